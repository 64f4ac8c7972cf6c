// lipo.hpp: header-only C++17 wrapper of lipo's C API (lipo.h).
//
//   lipo::Model model("model.lipo");                     // or lipo::Model::open_default()
//   double logd = model.predict("CCO");                  // throws lipo::Error on failure
//   std::vector<lipo::Prediction> many = model.predict_batch({"CCO", "not_a_smiles"});
//   lipo::Prediction p = model.predict_detail("CCO");    // p.sd, p.in_domain for ensembles
//
// Handles are closed by destructors (RAII); errors carry the library's status and message.
// A Model may be shared by many threads (predict and predict_batch are const).
#ifndef LIPO_HPP
#define LIPO_HPP

#include <cmath>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "lipo.h"

namespace lipo {

/// A failed call: the status and the library's message.
class Error : public std::runtime_error {
public:
    Error(LipoStatus status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    /// The status code the C API returned.
    LipoStatus status() const noexcept { return status_; }
    /// A short name of the status, e.g. "invalid SMILES".
    const char *status_name() const noexcept { return lipo_status_name(status_); }

private:
    LipoStatus status_;
};

namespace detail {
inline void check(LipoStatus status) {
    if (status != LIPO_STATUS_OK) throw Error(status, lipo_last_error());
}

/// `s` as a C string; a string with a NUL byte would be cut short there, so it is refused.
inline const char *c_str(const std::string &s, const char *what, LipoStatus status) {
    const auto nul = s.find('\0');
    if (nul != std::string::npos)
        throw Error(status, std::string(what) + " contains a NUL byte at position " +
                                std::to_string(nul + 1));
    return s.c_str();
}

struct StringDeleter {
    void operator()(char *s) const noexcept { lipo_string_free(s); }
};
using OwnedString = std::unique_ptr<char, StringDeleter>;
}  // namespace detail

/// lipo's version string.
inline std::string version() { return lipo_version(); }

/// The default bundle's path (LIPO_DEFAULT_BUNDLE, else lipo's shipped predictor); throws
/// lipo::Error (LIPO_STATUS_MODEL) when there is none. See lipo_default_model_path.
inline std::string default_model_path() {
    char *raw = nullptr;
    LipoStatus status = lipo_default_model_path(&raw);
    detail::OwnedString owned(raw);
    detail::check(status);
    return owned.get();
}

/// One molecule's result: Model::predict_batch fills `value` and `status`; Model::predict_detail
/// and Model::predict_detail_batch also fill `sd`, `domain` and `in_domain` when the bundle is an
/// ensemble (they stay empty for a single model and for a molecule that failed).
struct Prediction {
    /// The prediction (NaN when the molecule failed).
    double value = std::nan("");
    /// LIPO_STATUS_OK, or why the molecule failed.
    LipoStatus status = LIPO_STATUS_OK;
    /// Calibrated standard deviation of `value` (ensembles).
    std::optional<double> sd;
    /// Applicability-domain score: mean distance to the nearest training molecules (ensembles).
    std::optional<double> domain;
    /// Whether `domain` is at most the bundle's threshold (ensembles).
    std::optional<bool> in_domain;
    /// True when the molecule was predicted.
    bool ok() const noexcept { return status == LIPO_STATUS_OK; }
    /// True when the bundle gave an uncertainty (an ensemble).
    bool has_uncertainty() const noexcept { return sd.has_value(); }
};

/// What an ensemble bundle says about itself (see LipoEnsembleInfo); members is 0 for a single
/// model.
using EnsembleInfo = LipoEnsembleInfo;

namespace detail {
inline Prediction from_c(const LipoPrediction &p, LipoStatus status) {
    Prediction out;
    out.value = p.value;
    out.status = status;
    if (status == LIPO_STATUS_OK && p.in_domain >= 0) {
        out.sd = p.sd;
        out.domain = p.domain;
        out.in_domain = p.in_domain == 1;
    }
    return out;
}

/// Pointers to the SMILES; one with a NUL byte is passed as "" (an invalid SMILES), never cut
/// short.
inline std::vector<const char *> c_strs(const std::vector<std::string> &smiles) {
    std::vector<const char *> ptrs;
    ptrs.reserve(smiles.size());
    for (const auto &s : smiles)
        ptrs.push_back(s.find('\0') == std::string::npos ? s.c_str() : "");
    return ptrs;
}
}  // namespace detail

/// An exported model bundle (NAME.lipo) opened for prediction.
class Model {
public:
    /// Opens the bundle at `path`; `options_json` as for lipo_model_open_with (empty: defaults).
    explicit Model(const std::string &path, const std::string &options_json = "") {
        LipoModel *raw = nullptr;
        detail::check(lipo_model_open_with(
            detail::c_str(path, "path", LIPO_STATUS_INVALID_ARGUMENT),
            options_json.empty()
                ? nullptr
                : detail::c_str(options_json, "options_json", LIPO_STATUS_INVALID_ARGUMENT),
            &raw));
        handle_.reset(raw);
    }

    /// Opens the default bundle (see default_model_path); `options_json` as for the constructor.
    static Model open_default(const std::string &options_json = "") {
        return Model(default_model_path(), options_json);
    }

    /// Prediction for one SMILES (label units, or probability for classifiers).
    double predict(const std::string &smiles) const {
        double value = 0.0;
        detail::check(lipo_predict(
            handle_.get(), detail::c_str(smiles, "SMILES", LIPO_STATUS_INVALID_SMILES), &value));
        return value;
    }

    /// Predictions for many SMILES; a bad SMILES fails only its own entry.
    std::vector<Prediction> predict_batch(const std::vector<std::string> &smiles) const {
        std::vector<const char *> ptrs = detail::c_strs(smiles);
        std::vector<double> values(smiles.size());
        std::vector<LipoStatus> statuses(smiles.size());
        detail::check(lipo_predict_batch(handle_.get(), ptrs.data(), ptrs.size(), values.data(),
                                         statuses.data()));
        std::vector<Prediction> out(smiles.size());
        for (std::size_t i = 0; i < smiles.size(); ++i) {
            out[i].value = values[i];
            out[i].status = statuses[i];
        }
        return out;
    }

    /// Prediction for one SMILES with, for an ensemble bundle, its calibrated sd and
    /// applicability domain; throws lipo::Error as predict does.
    Prediction predict_detail(const std::string &smiles) const {
        LipoPrediction p;
        detail::check(lipo_predict_detail(
            handle_.get(), detail::c_str(smiles, "SMILES", LIPO_STATUS_INVALID_SMILES), &p));
        return detail::from_c(p, LIPO_STATUS_OK);
    }

    /// predict_detail for many SMILES; a bad SMILES fails only its own entry (see
    /// Prediction::status).
    std::vector<Prediction> predict_detail_batch(const std::vector<std::string> &smiles) const {
        std::vector<const char *> ptrs = detail::c_strs(smiles);
        std::vector<LipoPrediction> results(smiles.size());
        std::vector<LipoStatus> statuses(smiles.size());
        detail::check(lipo_predict_detail_batch(handle_.get(), ptrs.data(), ptrs.size(),
                                                results.data(), statuses.data()));
        std::vector<Prediction> out(smiles.size());
        for (std::size_t i = 0; i < smiles.size(); ++i)
            out[i] = detail::from_c(results[i], statuses[i]);
        return out;
    }

    /// The model's description as JSON (task, label statistics, version, ensemble fields).
    std::string info_json() const {
        char *raw = nullptr;
        detail::check(lipo_model_info(handle_.get(), &raw));
        detail::OwnedString owned(raw);
        return owned.get();
    }

    /// The ensemble's members, calibration and domain threshold; empty for a single model.
    std::optional<EnsembleInfo> ensemble_info() const {
        EnsembleInfo info;
        detail::check(lipo_model_ensemble_info(handle_.get(), &info));
        if (info.members == 0) return std::nullopt;
        return info;
    }

    /// The C handle, for calls this wrapper does not cover.
    const LipoModel *get() const noexcept { return handle_.get(); }

private:
    struct Closer {
        void operator()(LipoModel *m) const noexcept { lipo_model_close(m); }
    };
    std::unique_ptr<LipoModel, Closer> handle_;
};

/// Receives training events as JSON; return false to cancel.
using ProgressFn = std::function<bool(const std::string &event_json)>;

namespace detail {
inline int progress_trampoline(const char *event_json, void *user_data) {
    auto *fn = static_cast<ProgressFn *>(user_data);
    try {
        return (*fn)(event_json) ? 0 : 1;
    } catch (...) {
        return 1;  // an exception must not cross the C boundary: cancel instead
    }
}
}  // namespace detail

/// Runs a training job (JSON, see lipo_train) and returns its report as JSON.
inline std::string train(const std::string &job_json, ProgressFn progress = nullptr) {
    char *raw = nullptr;
    LipoStatus status = progress
        ? lipo_train(detail::c_str(job_json, "job", LIPO_STATUS_INVALID_ARGUMENT),
                     detail::progress_trampoline, &progress, &raw)
        : lipo_train(detail::c_str(job_json, "job", LIPO_STATUS_INVALID_ARGUMENT), nullptr,
                     nullptr, &raw);
    detail::OwnedString owned(raw);
    detail::check(status);
    return owned ? std::string(owned.get()) : std::string();
}

/// Exports a trained model folder as an ONNX bundle.
inline void export_model(const std::string &model_dir, const std::string &out_path) {
    detail::check(lipo_export(detail::c_str(model_dir, "model_dir", LIPO_STATUS_INVALID_ARGUMENT),
                              detail::c_str(out_path, "out_path", LIPO_STATUS_INVALID_ARGUMENT)));
}

}  // namespace lipo

#endif  // LIPO_HPP

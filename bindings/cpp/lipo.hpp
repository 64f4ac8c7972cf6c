// lipo.hpp: header-only C++17 wrapper of lipo's C API (lipo.h).
//
//   lipo::Model model("model.lipo");
//   double logd = model.predict("CCO");                  // throws lipo::Error on failure
//   std::vector<lipo::Prediction> many = model.predict_batch({"CCO", "not_a_smiles"});
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

/// One molecule's result from Model::predict_batch.
struct Prediction {
    /// The prediction (NaN when the molecule failed).
    double value = std::nan("");
    /// LIPO_STATUS_OK, or why the molecule failed.
    LipoStatus status = LIPO_STATUS_OK;
    /// True when the molecule was predicted.
    bool ok() const noexcept { return status == LIPO_STATUS_OK; }
};

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

    /// Prediction for one SMILES (label units, or probability for classifiers).
    double predict(const std::string &smiles) const {
        double value = 0.0;
        detail::check(lipo_predict(
            handle_.get(), detail::c_str(smiles, "SMILES", LIPO_STATUS_INVALID_SMILES), &value));
        return value;
    }

    /// Predictions for many SMILES; a bad SMILES fails only its own entry.
    std::vector<Prediction> predict_batch(const std::vector<std::string> &smiles) const {
        std::vector<const char *> ptrs;
        ptrs.reserve(smiles.size());
        // A SMILES with a NUL byte is passed as "" (an invalid SMILES), never cut short.
        for (const auto &s : smiles)
            ptrs.push_back(s.find('\0') == std::string::npos ? s.c_str() : "");
        std::vector<double> values(smiles.size());
        std::vector<LipoStatus> statuses(smiles.size());
        detail::check(lipo_predict_batch(handle_.get(), ptrs.data(), ptrs.size(), values.data(),
                                         statuses.data()));
        std::vector<Prediction> out(smiles.size());
        for (std::size_t i = 0; i < smiles.size(); ++i) out[i] = {values[i], statuses[i]};
        return out;
    }

    /// The model's description as JSON (task, label statistics, version).
    std::string info_json() const {
        char *raw = nullptr;
        detail::check(lipo_model_info(handle_.get(), &raw));
        detail::OwnedString owned(raw);
        return owned.get();
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

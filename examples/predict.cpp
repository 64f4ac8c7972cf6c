// predict.cpp: lipophilicity predictions from C++ through bindings/cpp/lipo.hpp.
//
//   predict [MODEL.lipo] [SMILES ...]    (SMILES from standard input when none are given)
//
// The first argument is the model when it names an existing file or folder or ends in .lipo;
// otherwise the default bundle is used (LIPO_DEFAULT_BUNDLE, else lipo's shipped predictor).
// Prints "SMILES<TAB>prediction", and for an ensemble "SMILES<TAB>prediction ± sd<TAB>in domain"
// (or "out of domain").
//
// Build: c++ -std=c++17 predict.cpp $(pkg-config --cflags --libs lipo) -o predict
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

#include "lipo.hpp"

static bool is_model(const std::string &arg) {
    std::error_code ec;
    return std::filesystem::exists(arg, ec) ||
           (arg.size() >= 5 && arg.compare(arg.size() - 5, 5, ".lipo") == 0);
}

int main(int argc, char **argv) {
    const bool given = argc > 1 && is_model(argv[1]);
    std::vector<std::string> smiles(argv + (given ? 2 : 1), argv + argc);
    if (smiles.empty()) {
        for (std::string line; std::getline(std::cin, line);) {
            auto end = line.find_first_of(" \t\r");
            line = line.substr(0, end);
            if (!line.empty()) smiles.push_back(line);
        }
    }
    try {
        lipo::Model model = given ? lipo::Model(argv[1]) : lipo::Model::open_default();
        int failed = 0;
        std::cout << std::fixed << std::setprecision(6);
        for (const auto &s : smiles) {
            try {
                lipo::Prediction p = model.predict_detail(s);
                std::cout << s << '\t' << p.value;
                if (p.has_uncertainty())
                    std::cout << " ± " << *p.sd << '\t'
                              << (*p.in_domain ? "in domain" : "out of domain");
                std::cout << '\n';
            } catch (const lipo::Error &e) {
                std::cerr << s << "\terror (" << e.status_name() << "): " << e.what() << '\n';
                failed = 1;
            }
        }
        return failed;
    } catch (const lipo::Error &e) {
        std::cerr << "cannot open " << (given ? argv[1] : "the default bundle") << ": "
                  << e.what() << '\n';
        return 2;
    }
}

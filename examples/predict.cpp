// predict.cpp: lipophilicity predictions from C++ through bindings/cpp/lipo.hpp.
//
//   predict MODEL.lipo [SMILES ...]      (SMILES from standard input when none are given)
//
// Build: c++ -std=c++17 predict.cpp $(pkg-config --cflags --libs lipo) -o predict
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

#include "lipo.hpp"

int main(int argc, char **argv) {
    if (argc < 2) {
        std::cerr << "usage: " << argv[0] << " MODEL.lipo [SMILES ...]\n";
        return 2;
    }
    std::vector<std::string> smiles(argv + 2, argv + argc);
    if (smiles.empty()) {
        for (std::string line; std::getline(std::cin, line);) {
            auto end = line.find_first_of(" \t\r");
            line = line.substr(0, end);
            if (!line.empty()) smiles.push_back(line);
        }
    }
    try {
        lipo::Model model(argv[1]);
        int failed = 0;
        for (const auto &s : smiles) {
            try {
                double value = model.predict(s);
                std::cout << s << '\t' << std::fixed << std::setprecision(6) << value << '\n';
            } catch (const lipo::Error &e) {
                std::cerr << s << "\terror (" << e.status_name() << "): " << e.what() << '\n';
                failed = 1;
            }
        }
        return failed;
    } catch (const lipo::Error &e) {
        std::cerr << "cannot open " << argv[1] << ": " << e.what() << '\n';
        return 2;
    }
}

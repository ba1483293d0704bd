// ironclad: the command-line program. A thin shell: each subcommand parses its options and calls the library.
// Exit status: 0 success, 1 a failed run (missing or corrupt file, mismatched weights), 2 a bad command line.
#include "ironclad/core/allocator.hpp"
#include "commands.hpp"
#include "options.hpp"
#include "report.hpp"
#include "ironclad/version.hpp"

#include <exception>
#include <iostream>
#include <string>
#include <vector>

namespace {

const char* const usage =
    "usage: ironclad <command> [options]\n"
    "\n"
    "commands:\n"
    "  models   list the architectures with their parameters and MACs\n"
    "  eval     evaluate trained weights on a dataset (float or fixed-point storage)\n"
    "  train    train a model on a dataset (resumable)\n"
    "  inject   fault campaign: bit flips in weights/activations over a grid of rates (resumable)\n"
    "  harden   bound every ReLU (Ranger, FT-ClipAct, FitAct, ProAct) and save weights with bounds\n"
    "  compare  clean and fault-campaign top-1 of several (hardened) checkpoints in one table\n"
    "  attack   clean and robust top-1 under an evasion attack (FGSM, PGD, APGD, Square, AutoAttack-style)\n"
    "  robust-train  adversarial training: PGD-AT, TRADES, ARD, RSLAD (resumable)\n"
    "  grid     top-1 over attack strengths x fault rates (table and heat map)\n"
    "\n"
    "Run 'ironclad <command> --help' for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
    ironclad::configure_allocator();
    using namespace ironclad::cli;
    const std::vector<std::string> words(argv + 1, argv + argc);
    if (words.empty()) {
        std::cerr << usage;
        return 2;
    }
    const std::string& command = words.front();
    const std::vector<std::string> args(words.begin() + 1, words.end());
    try {
        if (command == "--help" || command == "-h" || command == "help") {
            std::cout << usage;
            return 0;
        }
        if (command == "models") return run_models(args);
        if (command == "eval") return run_eval(args);
        if (command == "train") return run_train(args);
        if (command == "inject") return run_inject(args);
        if (command == "harden") return run_harden(args);
        if (command == "compare") return run_compare(args);
        if (command == "attack") return run_attack(args);
        if (command == "robust-train") return run_robust_train(args);
        if (command == "grid") return run_grid(args);
        if (command == "--version") {
            std::cout << "ironclad " << ironclad::engine_version << "\n";
            return 0;
        }
        throw UsageError("unknown command '" + command + "' (commands: models, eval, train, inject, harden, compare, attack, robust-train, grid)");
    } catch (const UsageError& e) {
        print_error(e.what());
        return 2;
    } catch (const std::exception& e) {
        print_error(e.what());
        return 1;
    }
}

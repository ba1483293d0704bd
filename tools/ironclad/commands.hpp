// The subcommands; each takes the words after its name and returns the exit status (errors are thrown:
// UsageError for the command line, anything else for the run).
#pragma once

#include <string>
#include <vector>

namespace ironclad::cli {

int run_models(const std::vector<std::string>& args);
int run_eval(const std::vector<std::string>& args);
int run_train(const std::vector<std::string>& args);
int run_inject(const std::vector<std::string>& args);
int run_harden(const std::vector<std::string>& args);
int run_compare(const std::vector<std::string>& args);
int run_attack(const std::vector<std::string>& args);
int run_robust_train(const std::vector<std::string>& args);
int run_grid(const std::vector<std::string>& args);

}  // namespace ironclad::cli

// Learning-rate schedules as pure functions of the epoch or step, so resuming needs no schedule state:
// call optimizer.set_lr(schedule.lr(t)) before each update.
//
// StepSchedule:   lr(epoch) = base_lr * gamma^(number of milestones <= epoch)   (torch's MultiStepLR)
// CosineSchedule: steps [0, warmup_steps) rise linearly, base_lr * (step + 1) / warmup_steps, so the first
//                 update already moves; then lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2
//                 with progress = (step - warmup_steps) / (total_steps - warmup_steps), i.e. base_lr at the
//                 end of warm-up, min_lr from total_steps on.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

struct StepSchedule {
    float base_lr;
    std::vector<std::int64_t> milestones;  // epochs at which the lr is multiplied by gamma
    float gamma = 0.1f;

    float lr(std::int64_t epoch) const {
        if (epoch < 0) throw std::invalid_argument("StepSchedule: negative epoch " + std::to_string(epoch));
        const auto passed = std::count_if(milestones.begin(), milestones.end(), [&](auto m) { return m <= epoch; });
        return static_cast<float>(base_lr * std::pow(static_cast<double>(gamma), static_cast<double>(passed)));
    }
};

struct CosineSchedule {
    float base_lr;
    std::int64_t total_steps;
    std::int64_t warmup_steps = 0;
    float min_lr = 0;

    float lr(std::int64_t step) const {
        if (total_steps < 1 || warmup_steps < 0 || warmup_steps > total_steps)
            throw std::invalid_argument("CosineSchedule: need 0 <= warmup_steps (" + std::to_string(warmup_steps) +
                                        ") <= total_steps (" + std::to_string(total_steps) + ") and total_steps >= 1");
        if (step < 0) throw std::invalid_argument("CosineSchedule: negative step " + std::to_string(step));
        if (step < warmup_steps)
            return static_cast<float>(static_cast<double>(base_lr) * static_cast<double>(step + 1) /
                                      static_cast<double>(warmup_steps));
        if (step >= total_steps) return min_lr;
        const double progress =
            static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
        return static_cast<float>(min_lr + (static_cast<double>(base_lr) - min_lr) * 0.5 *
                                               (1 + std::cos(std::numbers::pi * progress)));
    }
};

}  // namespace ironclad

// The six rounding x overflow policy combinations of FixedPoint<I,F>, for TEST_CASE_TEMPLATE lists.
#pragma once

#include "ironclad/core/fixed_point.hpp"

#define ALL_POLICIES(I, F)                                            \
    FixedPoint<I, F, Rounding::toward_zero, Overflow::saturate>,      \
        FixedPoint<I, F, Rounding::nearest_even, Overflow::saturate>, \
        FixedPoint<I, F, Rounding::floor, Overflow::saturate>,        \
        FixedPoint<I, F, Rounding::toward_zero, Overflow::wrap>,      \
        FixedPoint<I, F, Rounding::nearest_even, Overflow::wrap>, FixedPoint<I, F, Rounding::floor, Overflow::wrap>

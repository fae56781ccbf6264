// Measured memory read bandwidth: the limit of batch-1 decoding, which reads every weight once per
// token. Reported by the generate benchmark next to its decode throughput.
#pragma once
#include <cstddef>

namespace medix {

// Reads a zeroed buffer of `bytes` bytes with every thread `repeats` times (after one untimed pass
// that faults the pages in) and returns the best pass's rate in bytes per second.
double measure_read_bandwidth(size_t bytes, int repeats);

}  // namespace medix

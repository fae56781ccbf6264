// STUB
#include "gemm.h"

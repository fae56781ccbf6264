// NVIDIA's shared libraries (cuBLASLt, NCCL, cuDNN), opened at run time with dlopen rather than
// linked: the addon and the GPU programs build without their SDKs and start without them; only the
// code that needs one asks for it. Plain C++ (no CUDA headers), so every build has it.
#pragma once
#include <string>

namespace medix::cuda {

enum class Library { CublasLt, Nccl, Cudnn };

struct LoadedLibrary {
  void* handle;
  std::string path;  // the file that was opened, or the soname the default loader resolved
};

// Opens `lib` once per process (later calls return the same handle). Looks in, in order: each folder
// of MEDIX_CUDA_LIBS (colon-separated), of LD_LIBRARY_PATH, then $CUDA_HOME/lib64, then the default
// loader path, trying each soname in turn. Throws medix::Error naming the library, the sonames tried
// and every folder looked in (with the loader's reason for any file that exists but would not open).
const LoadedLibrary& load(Library lib);

// The address of `name` in a loaded library; throws naming the symbol and the file.
void* symbol(const LoadedLibrary& lib, const char* name);

// "cuBLASLt", "NCCL", "cuDNN".
const char* library_name(Library lib);

}  // namespace medix::cuda

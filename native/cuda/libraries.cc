// Run-time loading of NVIDIA's libraries (libraries.h). The search is explicit (each folder's file
// is tried by full path) so the error can list every place looked in, which is what a user needs
// when the library sits in a Python wheel's site-packages/nvidia/*/lib.
#include "libraries.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

#include "../core/error.h"

namespace medix::cuda {
namespace {

struct Spec {
  const char* name;
  std::vector<const char*> sonames;  // the CUDA 13 ABI first, then the unversioned development link
};

Spec spec(Library lib) {
  switch (lib) {
    case Library::CublasLt:
      return {"cuBLASLt", {"libcublasLt.so.13", "libcublasLt.so"}};
    case Library::Nccl:
      return {"NCCL", {"libnccl.so.2", "libnccl.so"}};
    case Library::Cudnn:
      return {"cuDNN", {"libcudnn.so.9", "libcudnn.so"}};
  }
  fail("cuda libraries: unknown library ", static_cast<int>(lib));
}

std::vector<std::string> split_dirs(const char* value) {
  std::vector<std::string> out;
  if (!value) return out;
  std::stringstream ss(value);
  for (std::string dir; std::getline(ss, dir, ':');)
    if (!dir.empty()) out.push_back(dir);
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

LoadedLibrary open_library(Library lib) {
  const Spec s = spec(lib);
  struct Source {
    std::string label;
    std::vector<std::string> dirs;
  };
  const char* cuda_home = std::getenv("CUDA_HOME");
  const std::vector<Source> sources{
      {"MEDIX_CUDA_LIBS", split_dirs(std::getenv("MEDIX_CUDA_LIBS"))},
      {"LD_LIBRARY_PATH", split_dirs(std::getenv("LD_LIBRARY_PATH"))},
      {"CUDA_HOME/lib64", cuda_home && *cuda_home ? std::vector<std::string>{std::string(cuda_home) + "/lib64"}
                                                  : std::vector<std::string>{}},
  };
  std::vector<std::string> looked, refused;  // folders searched; files that exist but did not open
  for (const Source& src : sources) {
    looked.push_back(src.label + " (" + (src.dirs.empty() ? std::string("unset") : join(src.dirs)) + ")");
    for (const std::string& dir : src.dirs) {
      for (const char* soname : s.sonames) {
        const std::string path = dir + "/" + soname;
        if (access(path.c_str(), F_OK) != 0) continue;
        if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) return {h, path};
        const char* why = dlerror();
        refused.push_back(path + ": " + (why ? why : "dlopen failed"));
      }
    }
  }
  std::string loader_reason;
  for (const char* soname : s.sonames) {
    if (void* h = dlopen(soname, RTLD_NOW | RTLD_LOCAL)) return {h, soname};
    const char* why = dlerror();
    loader_reason += std::string(loader_reason.empty() ? "" : "; ") + (why ? why : soname);
  }
  std::vector<std::string> names(s.sonames.begin(), s.sonames.end());
  fail(s.name, " not found: tried ", join(names), " in ", join(looked), " and the default loader path (", loader_reason,
       ")", refused.empty() ? "" : "; found but could not open: ", join(refused),
       ". Set MEDIX_CUDA_LIBS to the folder that holds it (for a pip install of the NVIDIA wheels: ",
       "site-packages/nvidia/<name>/lib)");
}

}  // namespace

const char* library_name(Library lib) { return spec(lib).name; }

const LoadedLibrary& load(Library lib) {
  // Successes are kept for the process (the handle is never closed); failures are not, so a caller
  // can fix the environment and ask again.
  static std::mutex mu;
  static std::map<Library, LoadedLibrary> loaded;
  std::lock_guard<std::mutex> lock(mu);
  auto it = loaded.find(lib);
  if (it == loaded.end()) it = loaded.emplace(lib, open_library(lib)).first;
  return it->second;
}

void* symbol(const LoadedLibrary& lib, const char* name) {
  dlerror();
  void* p = dlsym(lib.handle, name);
  if (!p) fail("symbol ", name, " not found in ", lib.path, " (an older or different version of the library?)");
  return p;
}

}  // namespace medix::cuda

{
  "targets": [
    {
      "target_name": "medix",
      "sources": ["<!@(node scripts/native-sources.cjs)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL"],
      "cflags!": ["-fno-exceptions", "-O2", "-O3"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-O2"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-frtti", "-Wall", "-Wno-unused-parameter"],
      "conditions": [
        ["target_arch=='x64'", { "cflags_cc": ["-march=x86-64-v3", "-mtune=native"] }],
        ["'<!(node scripts/detect-openblas.cjs)'=='1'", {
          "defines": ["MEDIX_HAVE_OPENBLAS=1"],
          "libraries": ["-lopenblas"]
        }],
        ["'<!(node scripts/detect-mpi.cjs)'=='1'", {
          "defines": ["MEDIX_HAVE_MPI=1"],
          "cflags_cc": ["<!@(node scripts/detect-mpi.cjs --compile)"],
          "libraries": ["<!@(node scripts/detect-mpi.cjs --link)"]
        }],
        ["'<!(node scripts/detect-cuda.cjs)'=='1'", {
          "defines": ["MEDIX_HAVE_CUDA=1", "MEDIX_CUDA_INFO=\"<!(node scripts/detect-cuda.cjs --info)\""],
          "actions": [{
            "action_name": "nvcc_kernels",
            "inputs": ["<!@(ls kernels/*.cu kernels/*.cuh kernels/*.h native/core/*.h native/ops/*.h)",
                       "scripts/build-cuda-check.sh"],
            "outputs": ["<(module_root_dir)/build/cuda-kernels/libmedix_kernels.a"],
            "action": ["bash", "<(module_root_dir)/scripts/build-cuda-check.sh", "--kernels-only",
                       "<(module_root_dir)/build/cuda-kernels"],
            "message": "nvcc: kernels/*.cu (sm_80, sm_90a)"
          }],
          "libraries": ["-Wl,--whole-archive", "<(module_root_dir)/build/cuda-kernels/libmedix_kernels.a",
                        "-Wl,--no-whole-archive", "<!@(node scripts/detect-cuda.cjs --link)"]
        }]
      ]
    }
  ]
}

// The CUDA backend's reservations (core/reservation.h): address space from the driver's virtual memory
// management, each granule backed by its own physical allocation while some acquisition covers it, so a
// fully sharded model's gathered units take device memory only while they are in place.
//
// The driver API comes through the runtime's entry points (cudaGetDriverEntryPointByVersion) with the
// toolkit's own declarations (cudaTypedefs.h): the addon links libcudart only, as it does for the rest.
// A granule is given back after the device has finished every queued op (a kernel or collective may still
// read it), so releasing a unit synchronises; one physical allocation per granule keeps any granule free
// to go back on its own (cuMemUnmap takes whole mappings).
#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "common.cuh"
#include "kernels.h"

namespace medix::cuda {
namespace {

struct Vmm {
  PFN_cuMemAddressReserve_v10020 reserve = nullptr;
  PFN_cuMemAddressFree_v10020 free = nullptr;
  PFN_cuMemCreate_v10020 create = nullptr;
  PFN_cuMemRelease_v10020 release = nullptr;
  PFN_cuMemMap_v10020 map = nullptr;
  PFN_cuMemUnmap_v10020 unmap = nullptr;
  PFN_cuMemSetAccess_v10020 set_access = nullptr;
  PFN_cuMemGetAllocationGranularity_v10020 granularity = nullptr;
};

template <typename Fn>
void entry(const char* symbol, Fn& fn) {
  void* p = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  check(cudaGetDriverEntryPointByVersion(symbol, &p, 12000, cudaEnableDefault, &found), "reservation: driver entry");
  if (found != cudaDriverEntryPointSuccess || !p) fail("reservation: the CUDA driver has no ", symbol);
  fn = reinterpret_cast<Fn>(p);
}

const Vmm& vmm() {
  static const Vmm v = [] {
    Vmm f;
    entry("cuMemAddressReserve", f.reserve);
    entry("cuMemAddressFree", f.free);
    entry("cuMemCreate", f.create);
    entry("cuMemRelease", f.release);
    entry("cuMemMap", f.map);
    entry("cuMemUnmap", f.unmap);
    entry("cuMemSetAccess", f.set_access);
    entry("cuMemGetAllocationGranularity", f.granularity);
    return f;
  }();
  return v;
}

void driver(CUresult r, const char* what) {
  if (r != CUDA_SUCCESS) fail("reservation: ", what, " failed (CUresult ", static_cast<int>(r), ")");
}

CUmemAllocationProp device_memory(int device) {
  CUmemAllocationProp prop = {};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device;
  return prop;
}

class DeviceReservation final : public Reservation {
 public:
  DeviceReservation(CUdeviceptr base, int64_t bytes, int64_t granule, int device)
      : Reservation(reinterpret_cast<char*>(base), bytes, granule),
        device_(device),
        handles_(static_cast<size_t>(bytes / granule), 0) {}
  ~DeviceReservation() override {
    // Best effort: a destructor cannot throw, and the process's context may already be going away.
    cudaDeviceSynchronize();
    for (size_t g = 0; g < handles_.size(); ++g)
      if (handles_[g]) {
        vmm().unmap(address(static_cast<int64_t>(g)), static_cast<size_t>(granule_bytes()));
        vmm().release(handles_[g]);
      }
    vmm().free(address(0), static_cast<size_t>(bytes()));
  }

 private:
  CUdeviceptr address(int64_t g) const { return reinterpret_cast<CUdeviceptr>(data()) + g * granule_bytes(); }
  void back(int64_t first, int64_t count) override {
    const CUmemAllocationProp prop = device_memory(device_);
    CUmemAccessDesc access = {};
    access.location = prop.location;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    const size_t g_bytes = static_cast<size_t>(granule_bytes());
    try {
      for (int64_t g = first; g < first + count; ++g) {
        CUmemGenericAllocationHandle h = 0;
        CUresult r = vmm().create(&h, g_bytes, &prop, 0);
        if (r == CUDA_ERROR_OUT_OF_MEMORY) {  // the pool may hold freed memory: as device_alloc does
          trim_pool("full sharding: backing a unit's memory");
          r = vmm().create(&h, g_bytes, &prop, 0);
        }
        if (r == CUDA_ERROR_OUT_OF_MEMORY) out_of_memory(g_bytes, "full sharding: backing a unit's memory");
        driver(r, "cuMemCreate");
        r = vmm().map(address(g), g_bytes, 0, h, 0);
        if (r != CUDA_SUCCESS) vmm().release(h);
        driver(r, "cuMemMap");
        handles_[g] = h;  // mapped: unback() gives it back
        driver(vmm().set_access(address(g), g_bytes, &access, 1), "cuMemSetAccess");
      }
    } catch (...) {
      // None of the run stays backed (Reservation::acquire counts only what back() completed).
      for (int64_t b = first; b < first + count; ++b)
        if (handles_[b]) drop(b);
      throw;
    }
  }
  void unback(int64_t first, int64_t count) override {
    check(cudaDeviceSynchronize(), "reservation: waiting for the ops before giving memory back");
    for (int64_t g = first; g < first + count; ++g) drop(g);
  }
  void drop(int64_t g) {
    driver(vmm().unmap(address(g), static_cast<size_t>(granule_bytes())), "cuMemUnmap");
    driver(vmm().release(handles_[g]), "cuMemRelease");
    handles_[g] = 0;
  }
  int device_;
  std::vector<CUmemGenericAllocationHandle> handles_;
};

}  // namespace

std::unique_ptr<Reservation> reserve_device(int64_t bytes, int device) {
  const CUmemAllocationProp prop = device_memory(device);
  size_t granule = 0;
  driver(vmm().granularity(&granule, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM), "cuMemGetAllocationGranularity");
  const int64_t g = static_cast<int64_t>(granule);
  const int64_t rounded = (std::max<int64_t>(bytes, 1) + g - 1) / g * g;
  CUdeviceptr base = 0;
  driver(vmm().reserve(&base, static_cast<size_t>(rounded), 0, 0, 0), "cuMemAddressReserve");
  return std::make_unique<DeviceReservation>(base, rounded, g, device);
}

}  // namespace medix::cuda

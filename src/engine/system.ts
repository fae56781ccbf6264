// Engine-wide settings and facts: the thread pool, which sgemm kernel the CPU ops use, what the addon
// was built with, and a checked GEMM for tests and benchmarks.
import { native } from './native.js';

/** The sgemm kernels the addon can have: OpenBLAS (when found at build time) and the built-in portable one. */
export type GemmKernelName = 'portable' | 'openblas';

export interface BuildInfo {
  /** Whether OpenBLAS was found at build time (the 'openblas' kernel exists). */
  openblas: boolean;
  /** OpenBLAS's own description: version, build options and the CPU core kernel it chose ("core=..."); "" without OpenBLAS. */
  openblasInfo: string;
  /** Compiler and version the addon was built with. */
  compiler: string;
  /** Vector instruction set the portable kernel was compiled for, e.g. "AVX2+FMA". */
  simd: string;
  /** Whether MPI was found at build time (multi-process training under mpirun/srun). */
  mpi: boolean;
  /** The MPI library's own description; "" without MPI. */
  mpiInfo: string;
  /** Whether the CUDA kernels (kernels/*.cu) were compiled into the addon (nvcc found at build time). */
  cuda: boolean;
  /** The nvcc version and GPU targets the kernels were built for, or why there are none. */
  cudaInfo: string;
}

/** The CUDA devices the runtime sees; `reason` says why there are none (count 0), else it is "". */
export interface CudaDevices {
  count: number;
  reason: string;
}

/** NVIDIA libraries the CUDA backend opens at run time (never linked). */
export type CudaLibraryName = 'cuBLASLt' | 'NCCL' | 'cuDNN';

/**
 * One row-major single-precision matrix product, `C = alpha * op(A) * op(B) + beta * C`, where op(A) is
 * M x K and op(B) is K x N. A is stored M x K, or K x M when `transA`; B is stored K x N, or N x K when
 * `transB`. Leading dimensions (the stride between stored rows) default to the stored row length.
 */
export interface GemmOptions {
  /** Use the transpose of A (stored K x M). Default false. */
  transA?: boolean;
  /** Use the transpose of B (stored N x K). Default false. */
  transB?: boolean;
  M: number;
  N: number;
  K: number;
  /** Default 1. */
  alpha?: number;
  /** Default 0. With beta = 0, C is only written, never read (NaN there does not propagate). */
  beta?: number;
  A: Float32Array;
  B: Float32Array;
  /** Updated in place; must not share memory with A or B. */
  C: Float32Array;
  lda?: number;
  ldb?: number;
  ldc?: number;
}

/** The CPU in hand, as the addon sees it at run time. */
export interface CpuInfo {
  /** Vector extensions found, e.g. "AVX2 FMA AVX512F AVX512-BF16". */
  features: string;
  l1dBytes: number;
  l2Bytes: number;
  l3Bytes: number;
}

/** The register-only FMA throughput probe: the arithmetic ceiling of this machine. */
export interface FmaPeak {
  /** Best run, all threads of the pool together. */
  gflops: number;
  /** The vector unit measured: "AVX-512", "AVX2+FMA", or "none" (gflops 0) off x86-64. */
  isa: string;
}

/** Time per kind of op since the last takeOpProfile(), while setOpProfiling(true). */
export interface OpProfile {
  /**
   * By kind (embedding, norms, linear, rope, attention, elementwise, logprob_head, optimizer, moe, decode);
   * kinds not run are absent.
   */
  kinds: Record<string, { ms: number; calls: number; flops: number }>;
  /** parallel_for calls that woke the pool's threads. */
  parallelCalls: number;
}

interface SystemAddon {
  setThreads(n: number): void;
  threads(): number;
  gemmKernels(): GemmKernelName[];
  setGemmKernel(name: GemmKernelName): void;
  gemmKernel(): GemmKernelName;
  buildInfo(): BuildInfo;
  gemmMicroKernels(): string[];
  gemmMicroKernel(): string;
  setGemmMicroKernel(name: string): void;
  cpuInfo(): CpuInfo;
  fmaPeak(repeats: number, ms: number): FmaPeak;
  setOpProfiling(on: boolean): void;
  takeOpProfile(): OpProfile;
  parallelForCostUs(reps: number): number;
  readBandwidth(mib: number, repeats: number): number;
  loadCudaLibrary(name: CudaLibraryName): string;
  cudaDevices(): CudaDevices;
  gemm(opts: GemmOptions): void;
  gemmAsync(opts: GemmOptions): Promise<void>;
}

const addon = native<SystemAddon>();

/**
 * Sets how many threads the CPU ops (and OpenBLAS) use; 0 means one per hardware thread (the default).
 * The portable kernel's results do not depend on this number (OpenBLAS's may).
 */
export function setThreads(n: number): void {
  addon.setThreads(n);
}

/** Current thread pool size. */
export function threads(): number {
  return addon.threads();
}

/** The sgemm kernels this build offers, the portable one first. */
export function gemmKernels(): GemmKernelName[] {
  return addon.gemmKernels();
}

/**
 * Chooses the sgemm kernel of every CPU op (attention's per-head products always use the portable one).
 * The default is OpenBLAS when built in, else portable; the environment variable
 * MEDIX_GEMM=portable|openblas, read once at first use, overrides it. Throws if the kernel is unknown or
 * not built in.
 */
export function setGemmKernel(name: GemmKernelName): void {
  addon.setGemmKernel(name);
}

/** The sgemm kernel in use. */
export function gemmKernel(): GemmKernelName {
  return addon.gemmKernel();
}

/** What the native addon was built with. */
export function buildInfo(): BuildInfo {
  return addon.buildInfo();
}

/**
 * The portable kernel's register kernels this CPU can run, the build's own first ("avx2" on x86-64,
 * "generic" elsewhere), then "avx512" when the CPU has AVX-512. They give the same bits.
 */
export function gemmMicroKernels(): string[] {
  return addon.gemmMicroKernels();
}

/** The register kernel the portable kernel uses (by default the widest in gemmMicroKernels()). */
export function gemmMicroKernel(): string {
  return addon.gemmMicroKernel();
}

/** Chooses the portable kernel's register kernel (tests, benchmarks); throws for one this CPU lacks. */
export function setGemmMicroKernel(name: string): void {
  addon.setGemmMicroKernel(name);
}

/** Vector extensions and cache sizes of this CPU. */
export function cpuInfo(): CpuInfo {
  return addon.cpuInfo();
}

/**
 * FMA throughput of the widest vector unit, measured on every pool thread: the best of `repeats` runs of
 * about `ms` milliseconds (many short runs: on a shared machine one of them finds every core free).
 */
export function fmaPeak(repeats = 100, ms = 2): FmaPeak {
  return addon.fmaPeak(repeats, ms);
}

/**
 * Switches op profiling on or off: while on, every op of the CPU backend adds its wall time to its kind
 * (benchmarks: where a step's time goes). Off by default.
 */
export function setOpProfiling(on: boolean): void {
  addon.setOpProfiling(on);
}

/** The op profile since the last call (then reset). */
export function takeOpProfile(): OpProfile {
  return addon.takeOpProfile();
}

/** Microseconds per parallel_for call that wakes the pool with nothing to do: the cost of a wake-up. */
export function parallelForCostUs(reps = 2000): number {
  return addon.parallelForCostUs(reps);
}

/**
 * Memory read bandwidth in bytes/s: the best of `repeats` parallel passes over a `mib` MiB buffer
 * (benchmarks: the limit of decoding, which reads all weights per step).
 */
/**
 * Opens an NVIDIA library as the CUDA backend does and returns the file opened. Search order: the folders
 * of MEDIX_CUDA_LIBS (colon-separated), of LD_LIBRARY_PATH, $CUDA_HOME/lib64, then the default loader
 * path. Throws an error naming the library, the sonames tried and every folder looked in.
 */
export function loadCudaLibrary(name: CudaLibraryName): string {
  return addon.loadCudaLibrary(name);
}

/** The CUDA devices this process can use (none in a build without CUDA, with the reason). */
export function cudaDevices(): CudaDevices {
  return addon.cudaDevices();
}

export function readBandwidth(mib = 512, repeats = 3): number {
  return addon.readBandwidth(mib, repeats);
}

/** Runs one checked GEMM on the calling thread with the selected kernel; C is updated in place. */
export function gemm(opts: GemmOptions): void {
  addon.gemm(opts);
}

/**
 * Same as gemm(), off the JavaScript main thread; resolves once C holds the result. Do not touch the
 * arrays until then. Arguments are checked before the promise is returned (bad input throws synchronously).
 */
export function gemmAsync(opts: GemmOptions): Promise<void> {
  return addon.gemmAsync(opts);
}

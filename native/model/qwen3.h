// A Qwen3 dense decoder (also the text model of Qwen3-VL) assembled from a config, with forward to
// per-token log-probs over a packed batch, backward into flat gradient buffers, and AdamW.
//
// Parameters live in one flat buffer in a fixed order (the order of params()), named exactly as
// Hugging Face names them; gradients and optimizer moments use the same layout, which keeps the
// optimizer, gradient-norm and the data-parallel collectives simple loops over one buffer.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../core/backend.h"
#include "../core/bf16.h"
#include "../dist/communicator.h"
#include "../dist/partition.h"
#include "../ops/adamw.h"
#include "../ops/attention.h"
#include "../ops/moe.h"
#include "../ops/rope.h"
#include "kv_cache.h"
#include "qwen3_vl_vision.h"

namespace medix {

struct Qwen3Config {
  int64_t vocab = 0, hidden = 0, intermediate = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0;
  float rope_theta = 1e6f;
  float rms_eps = 1e-6f;
  bool tie_embeddings = false;
  // Multi-section rope (Qwen3-VL): empty for standard rope; else 3 sections summing to head_dim/2.
  std::vector<int64_t> mrope_section;
  bool mrope_interleaved = false;
  // Name prefix of the decoder's parameters: "model." (Qwen3) or "model.language_model." (Qwen3-VL).
  std::string prefix = "model.";
  // Qwen3-VL: the vision tower (parameters "model.visual.*") and the token its outputs replace.
  std::optional<VisionConfig> vision;
  int32_t image_token_id = -1;

  // Mixture of experts (qwen3_moe, qwen3_vl_moe); experts == 0 means dense. Layer l is sparse when
  // it is not in mlp_only_layers and (l + 1) % decoder_sparse_step == 0, as Hugging Face decides.
  int64_t experts = 0, experts_per_token = 0, moe_intermediate = 0, decoder_sparse_step = 1;
  std::vector<int64_t> mlp_only_layers;
  bool norm_topk_prob = true;

  void validate() const;         // throws medix::Error naming the field
  void validate_vision() const;  // qwen3_vl.cc: the tower's config and its fit to the text model
  bool is_sparse(int64_t layer) const;
  int64_t sparse_layers() const;
  int position_components() const { return mrope_section.empty() ? 1 : 3; }
};

struct ParamInfo {
  std::string name;
  std::vector<int64_t> shape;
  int64_t offset = 0;  // into the flat buffer, in floats
  int64_t numel = 0;
};

// A packed batch, host memory. positions is [P, T] (component-major), or null to number the tokens
// of each sequence 0, 1, 2, ... (all components equal). targets[t] = -1 means no target.
struct PackedBatch {
  int64_t T = 0;
  const int32_t* tokens = nullptr;
  const int32_t* cu_seqlens = nullptr;
  int64_t n_seqs = 0;
  const int32_t* targets = nullptr;
  const int32_t* positions = nullptr;
  // Qwen3-VL images: pixels [patches, patch_inputs] and one grid per image, in the order their
  // image tokens appear; each image fills (h/merge)*(w/merge)*t consecutive image tokens.
  const float* pixels = nullptr;
  const ImageGrid* grids = nullptr;
  int64_t n_images = 0;
};

struct ForwardOptions {
  float temperature = 1.0f;
  bool entropy = false;
  bool training = false;  // keep what backward needs
  bool logits = false;    // also return the full [T, V] logits (tests, debugging)
};

// Bytes of activation memory for T tokens: what one layer keeps for backward, and the total.
struct ActivationPlan {
  int64_t tokens = 0;
  bool recompute = false;
  size_t per_layer_bytes = 0;  // one layer's saved activations
  size_t stream_bytes = 0;     // residual stream kept per layer boundary (L+1 copies)
  size_t scratch_bytes = 0;    // gradient/scratch buffers of the backward pass
  size_t vision_bytes = 0;     // Qwen3-VL: the vision tower's activations for the batch's image patches
  size_t total_bytes = 0;
};

struct StepResult {
  double grad_norm = 0;
  bool skipped = false;  // a gradient was NaN/Inf: parameters and moments left untouched
  int64_t step = 0;
};

// One step of inference with a KV cache (qwen3_decode.cc), host memory. Sequence i of the step
// (cache id seq_ids[i]) gets the new tokens [cu_seqlens[i], cu_seqlens[i+1]) appended: a prompt
// (prefill) or the one token sampled last (decode); both kinds can share a step. positions is
// [P, T] or null for the cache index (the sequence's length before the step plus the offset).
// logit_rows lists the tokens whose next-token logits are wanted (usually each sequence's last).
struct CachedStep {
  int64_t T = 0;
  const int32_t* tokens = nullptr;
  int64_t n_seqs = 0;
  const int64_t* seq_ids = nullptr;
  const int32_t* cu_seqlens = nullptr;
  const int32_t* positions = nullptr;
  int64_t n_logit_rows = 0;
  const int32_t* logit_rows = nullptr;
  // Qwen3-VL images of the step's prompts, as in PackedBatch; image_rows lists, in order, the step's
  // tokens (each an image token) that take the tower's merged outputs and deepstack additions. A
  // sampled image token is not among them: it keeps its embedding, as in Hugging Face's decoding.
  const float* pixels = nullptr;
  const ImageGrid* grids = nullptr;
  int64_t n_images = 0;
  const int32_t* image_rows = nullptr;
  int64_t n_image_rows = 0;
};

// Full sharding's memory on one rank (qwen3_fsdp.cc), in bytes.
struct FullShardMemory {
  int64_t slice_bytes = 0;           // this rank's shards: master weights, gradients, moments (once allocated)
  int64_t gathered_bytes = 0;        // whole units in place now (weights and gradients, whole granules)
  int64_t peak_gathered_bytes = 0;   // the most gathered at once since the last reset (when probing)
  int64_t whole_state_bytes = 0;     // weights, gradients and both moments of the whole model in one process
  int64_t largest_unit_bytes = 0;    // one unit's weights and gradients
  int64_t allgather_bytes = 0;       // all-gathered into this rank since the last reset (whole units)
  int64_t reduce_scatter_bytes = 0;  // reduce-scattered from this rank since the last reset (whole units)
};

struct BufferArena;  // qwen3_internal.h

class Qwen3Model {
 public:
  Qwen3Model(const Qwen3Config& cfg, Backend& backend, uint64_t seed, float init_std);
  ~Qwen3Model();
  Qwen3Model(const Qwen3Model&) = delete;
  Qwen3Model& operator=(const Qwen3Model&) = delete;

  const Qwen3Config& config() const { return cfg_; }
  Backend& backend() const { return be_; }
  const std::vector<ParamInfo>& params() const { return params_; }
  const ParamInfo& param(const std::string& name) const;  // throws naming the unknown name
  int64_t n_params() const { return n_params_; }

  void get_param(const ParamInfo& p, float* host) const;
  void set_param(const ParamInfo& p, const float* host);
  void get_grad(const ParamInfo& p, float* host) const;

  bool recompute() const { return recompute_; }
  void set_recompute(bool on);
  // image_patches: the batch's image patches (Qwen3-VL), whose tower activations count too.
  ActivationPlan plan(int64_t T, bool training, int64_t image_patches = 0) const;

  // logp[T] (and entropy[T], logits[T*V] when asked) are host buffers.
  void forward(const PackedBatch& b, const ForwardOptions& o, float* logp, float* entropy, float* logits);
  // Accumulates d(sum dlogp*logp + dentropy*entropy)/d(params) into the gradients. Needs the last
  // forward to have been a training forward; n must equal its token count; dentropy may be null.
  void backward(const float* dlogp, int64_t n, const float* dentropy);
  void zero_grad();

  // Global-norm clipping (max_grad_norm <= 0 disables) then AdamW on every parameter; decay[i] says
  // whether weight decay applies to params()[i].
  StepResult optimizer_step(const AdamWConfig& cfg, float max_grad_norm, const std::vector<bool>& decay);
  int64_t optimizer_steps() const { return step_; }

  // Data parallel over the ranks of `comm`, with the optimizer sharded (ZeRO-1): every rank keeps
  // all weights and accumulates the gradients of its own samples; optimizer_step sums each
  // tensor's gradient onto the one rank that owns it (partition_tensors), which clips with the
  // global norm, updates it with the moments only it keeps, and sends the new values to every
  // rank. The ranks' weights stay identical, and each holds 1/size of the optimizer state. Call
  // before any optimizer state exists; every rank must then call optimizer_step together.
  // `comm` moves the model's buffers (MPI for host memory, NCCL for a GPU's); `scalars`, over the same
  // ranks, sums the host values (the gradient norm): comm itself when it takes host memory.
  void set_data_parallel(Communicator& comm, Communicator& scalars);
  void set_data_parallel(Communicator& comm) { set_data_parallel(comm, comm); }
  // The tensors whose optimizer state (and checkpoint files) this rank owns: all of them until
  // set_data_parallel.
  const Shard& owned() const { return shards_[rank_]; }
  int rank() const { return rank_; }
  int world_size() const { return static_cast<int>(shards_.size()); }

  // Full sharding over the ranks of `comm` (FSDP full shard): the layout is cut into units (the
  // embedding, each layer, the final norm, the vision tower's blocks, the head; flat_units.h) and
  // this rank keeps only its 1/size shard of each unit's master weights, gradients and moments.
  // forward and backward all-gather a unit into its place just before it computes (the next layer's
  // while a layer computes, where the communicator overlaps gathers with compute) and give the memory
  // back after; backward reduce-scatters each unit's gradients onto their owners as soon as
  // they are complete. Every rank must then call forward, backward and optimizer_step together.
  // Call on a model whose weights are whole (loaded or initialised), before any optimizer state,
  // and not with set_data_parallel. `comm` moves the model's buffers (MPI for host memory, NCCL for a
  // GPU's); `scalars`, over the same ranks, sums the host values (the gradient norm).
  void set_full_shard(Communicator& comm, Communicator& scalars);
  void set_full_shard(Communicator& comm) { set_full_shard(comm, comm); }
  bool full_shard() const { return fsdp_ != nullptr; }
  // Every unit gathered and kept until release_weights (generation, get_param); collective.
  void gather_weights();
  void release_weights();
  FullShardMemory full_shard_memory() const;
  // Sample the gathered bytes (the reserved layouts' backed granules) after every gather and before every
  // reduce-scatter, and reset the peak and the traffic counts.
  void probe_full_shard_memory(bool on);
  // This rank's parts of the layout under full sharding (checkpoints write them, resumes fill them):
  // tensor t's floats [from, from + count) sit at slice floats [at, at + count) of the master
  // weights and of both moments.
  struct OwnedPart {
    int64_t tensor, from, count, at;
  };
  std::vector<OwnedPart> full_shard_parts() const;
  // This rank's master weights (slice layout, optimizer_floats() floats).
  void get_full_shard_weights(float* host) const;

  // The AdamW state, for checkpoints that resume exactly: both moments of the owned tensors in the
  // flat params() layout (zeros before the first step) as host buffers of owned().numel floats, and
  // the step count.
  // Fully sharded, the moments are this rank's slice (optimizer_floats() floats, full_shard_parts).
  int64_t optimizer_floats() const;
  void get_optimizer_state(float* m, float* v) const;
  void set_optimizer_state(const float* m, const float* v, int64_t step);

  // Mixture of experts (qwen3_moe.cc). backward adds weight * d(sum over sequences of the
  // load-balancing loss)/d(params) (router_aux_loss_coef times the objective's normalisation; 0 by
  // default). The last forward's loss per sequence, and tokens per expert [sparse layers, experts].
  void set_aux_loss_weight(float w) { aux_weight_ = w; }
  std::vector<double> aux_losses() const;
  const std::vector<int64_t>& expert_load() const { return moe_load_; }
  // The router logits [sparse layers, T, E] of the last forward that asked for logits.
  const std::vector<float>& router_logits() const { return moe_router_logits_; }

  // Inference with a KV cache: appends the step's tokens to their sequences in `cache` (whose
  // layers and kv_dim must match the model) and writes the logits of step.logit_rows to
  // `logits` ([n_logit_rows, vocab], backend memory). Throws, changing nothing, on bad input or
  // when the cache has too few free blocks.
  void forward_cached(const CachedStep& step, KvCache& cache, float* logits);
  // Frees the buffers forward_cached keeps between calls.
  void release_decode_workspace();

  // The dtype of the decoder's matrix products (qwen3_compute.cc). Master weights, gradients and AdamW
  // moments stay f32 either way; bf16 keeps a bf16 copy of the weights, made again before the first
  // product after any change to them (set_param, optimizer_step), which the decoder's linear layers and
  // a sparse layer's router and experts (forward, and dx in backward) and the decode and full-logits heads
  // read. The fused log-prob head, the embedding and the norms read the f32 weights. The vision tower's
  // linear layers read the copy too (qwen3_vl.cc, run_tower), and its attention takes the bf16 path.
  // Fully sharded, units are gathered in the compute dtype: in bf16 every op reads the bf16-rounded
  // weights (qwen3_fsdp.cc, unit_gather).
  void set_compute_dtype(ComputeDType d);
  ComputeDType compute_dtype() const { return dtype_; }

  // Qwen3-VL: a frozen vision tower gets no gradients (backward stops at its outputs).
  // A change invalidates the last forward for backward: a frozen tower's forward keeps no activations.
  void set_vision_frozen(bool frozen) {
    if (frozen != vision_frozen_) have_training_forward_ = false;
    vision_frozen_ = frozen;
  }
  bool vision_frozen() const { return vision_frozen_; }
  // Whether a forward's vision tower keeps its activations for backward: when training an unfrozen tower.
  bool tower_for_backward(bool training) const { return training && !vision_frozen_; }

 private:
  struct Layer;      // pointers to one layer's parameters (or gradients)
  struct Acts;       // one layer's activations
  struct Workspace;  // every activation/scratch buffer for a given capacity

  struct DecodeWorkspace;  // forward_cached's buffers
  struct FullShard;        // qwen3_fsdp.cc

  // Full sharding's steps around each unit (no-ops without it); units are indexed in layout order.
  void unit_start_gather(int64_t u);  // (finishing any other first)
  void unit_prefetch(int64_t u);      // starts its gather where the engine overlaps it with compute
  void finish_gather();               // of the pending unit
  void unit_gather(int64_t u);        // its weights in place (started here unless prefetched)
  void unit_release(int64_t u);
  void unit_grads(int64_t u);         // before its backward writes: its gradients in place, zeroed
  void unit_reduce_grads(int64_t u);  // after its backward: sum onto the owners, give the memory back
  void release_unit_grads();          // every unit's gradients in place given back unreduced
  void release_unit_weights();        // every unit's weights in place given back, unless pinned
  int64_t head_unit() const;
  int64_t norm_unit() const { return 1 + cfg_.layers; }
  // Tensors per decoder layer (layer_tensors() in qwen3.cc: norms, attention, and a dense or sparse
  // MLP of 3). The parameter list is the embedding, the layers, the final norm, [vision], [lm_head].
  static constexpr size_t kLayerTensors = 11;
  size_t final_norm_tensor() const { return 1 + kLayerTensors * static_cast<size_t>(cfg_.layers); }
  void vision_units(bool gather);                                 // gather or release the tower's units
  void set_owned_weights(const ParamInfo& p, const float* host);  // this rank's parts of p
  void require_whole_weights(const char* what) const;             // throws while fully sharded and not gathered
  // The step's global gradient norm over this rank's n gradients at g (its square summed on the host
  // across `scalars` when given), clipping them to max_grad_norm; allocates n floats of each moment on the
  // first step and counts the step. False, with r marked skipped, when the norm is not finite.
  bool clip_and_count_step(float* g, int64_t n, Communicator* scalars, float max_grad_norm, StepResult& r);
  StepResult full_shard_step(const AdamWConfig& cfg, float max_grad_norm, const std::vector<bool>& decay);

  // The decoder's linear layers, in the compute dtype: W points into weights_ (qwen3_compute.cc).
  void linear(float* y, const float* x, const float* W, int64_t T, int64_t in, int64_t out);
  void linear_back(float* dx, float* dW, const float* dy, const float* x, const float* W, int64_t T, int64_t in,
                   int64_t out);
  const uint16_t* compute_copy(const float* W);  // W's place in the bf16 copy, made first when stale

  Acts alloc_acts(BufferArena& arena, int64_t capacity, bool with_lse) const;
  Layer layer_view(float* base, int64_t i) const;
  RopeSpec rope_spec() const;
  AttentionShape attention_shape(int64_t T) const;  // the packed batch's, cu_seqlens on both sides
  void ensure_workspace(int64_t T, bool training);
  // Parts of a layer's forward shared by training and cached inference (T tokens, buffers in a).
  void qkv_forward(int64_t l, const float* x_in, Acts& a, const int32_t* positions, int64_t T);
  void output_mlp_forward(int64_t l, const float* x_in, float* x_out, Acts& a, float* tmp, int64_t T);
  void layer_forward(int64_t l, const float* x_in, float* x_out, Acts& a);
  void layer_backward(int64_t l, float* dh, Acts& a);
  void head_forward(const float* head, const ForwardOptions& o, float* logp, float* entropy);
  void head_backward(const float* head, float* dhead, const float* dlogp, const float* dentropy);
  // Qwen3-VL (qwen3_vl.cc): run the tower and put its outputs at the image tokens of stream0;
  // add deepstack output l after layer l; in backward, collect their gradients and run the tower's.
  // A forward without training keeps only the tower's outputs (no backward follows it).
  void visual_forward(const PackedBatch& b, float* stream0, bool training);
  // The pieces shared with cached inference: the tower's forward on the images (checking that they
  // give image_tokens tokens), its merged outputs written to rows of a stream, and deepstack output l
  // added to those rows (nothing past the last deepstack merger).
  std::unique_ptr<VisionTower> run_tower(const float* pixels, const ImageGrid* grids, int64_t n_images,
                                         int64_t image_tokens, const char* fn, bool for_backward);
  void place_visual(const VisionTower& tower, const std::vector<int32_t>& rows, float* stream);
  void add_deepstack(const VisionTower& tower, const std::vector<int32_t>& rows, int64_t l, float* stream);
  void gather_visual_rows(float* out, const float* stream) const;  // the image tokens' rows, in order
  void deepstack_forward(int64_t l, float* stream);
  void deepstack_backward(int64_t l, const float* dh);
  void visual_backward(float* dh);
  // The sparse block of layer l (qwen3_moe.cc): out = experts(a.xn2), and its backward into dxn.
  void moe_mlp_forward(int64_t l, Acts& a, float* out, int64_t T);
  void moe_mlp_backward(int64_t l, const float* dout, float* dxn, Acts& a, int64_t T);
  void moe_record(int64_t l, const Acts& a, bool keep_logits);  // the forward's load statistics
  MoeShape moe_shape(int64_t T) const;

  Qwen3Config cfg_;
  Backend& be_;
  std::vector<ParamInfo> params_;
  int64_t n_params_ = 0;
  float* weights_ = nullptr;
  float* grads_ = nullptr;
  float* adam_m_ = nullptr;
  float* adam_v_ = nullptr;
  int64_t step_ = 0;
  ComputeDType dtype_ = ComputeDType::f32;
  uint16_t* compute_ = nullptr;  // bf16 copy of weights_ (bf16 compute only)
  bool compute_stale_ = true;    // weights_ changed since compute_ was made
  bool recompute_ = false;
  Communicator* comm_ = nullptr;     // null: one process
  Communicator* scalars_ = nullptr;  // host values' collectives over comm_'s ranks (set_data_parallel)
  std::vector<Shard> shards_;        // every rank's tensors, by rank
  int rank_ = 0;
  std::vector<uint8_t> freq_component_;  // rope section map, empty for standard rope

  std::unique_ptr<FullShard> fsdp_;
  std::unique_ptr<Workspace> ws_;
  std::unique_ptr<DecodeWorkspace> dws_;
  // The last forward's batch (host copies) and options, for backward.
  std::vector<int32_t> tokens_, cu_, targets_, positions_;
  // Rows of the last forward that have a target: the only rows the vocabulary head runs on (see
  // head_forward). Prompt tokens of RL and SFT batches have none, and with a 151,936-entry vocabulary
  // the head is most of a small model's step.
  std::vector<int32_t> head_rows_;
  ForwardOptions last_opts_;
  // Qwen3-VL: index of the first "model.visual." parameter, the tower of the last forward, the token
  // rows its outputs went to, and the gradients of the deepstack outputs collected in backward.
  size_t vision_first_ = 0;
  std::unique_ptr<VisionTower> tower_;
  std::vector<int32_t> visual_rows_;
  std::vector<BackendArray<float>> d_deepstack_;
  bool vision_frozen_ = false;
  // Load statistics of the last forward: counts/prob sums [sequences, experts] over the sparse
  // layers (for the load-balancing loss), tokens per expert [sparse layers, experts].
  float aux_weight_ = 0;
  std::vector<double> moe_counts_, moe_prob_sums_;
  std::vector<int64_t> moe_load_;
  std::vector<float> moe_router_logits_;
  bool have_training_forward_ = false;
};

}  // namespace medix

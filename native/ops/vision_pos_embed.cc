// Bilinear interpolation of the position table, forward and backward. The backward runs serially in
// patch order so the scatter into shared table rows is deterministic.
#include "vision_pos_embed.h"

#include <algorithm>

#include "../core/threads.h"
#include "../core/op_table_dsl.h"

namespace medix::cpu {
namespace {

// torch.linspace(0, end, n) in float32: the first half counts up from 0, the second half down from end.
float linspace_at(int64_t i, int64_t n, float end) {
  if (n == 1) return 0.0f;
  const float step = end / static_cast<float>(n - 1);
  return i < n / 2 ? static_cast<float>(i) * step : end - static_cast<float>(n - 1 - i) * step;
}

PosEmbedTaps taps(int64_t r, int64_t c, int64_t h, int64_t w, int64_t side) {
  const float end = static_cast<float>(side - 1);
  const float y = linspace_at(r, h, end), x = linspace_at(c, w, end);
  const int64_t y0 = static_cast<int64_t>(y), x0 = static_cast<int64_t>(x);
  const int64_t y1 = std::min(y0 + 1, side - 1), x1 = std::min(x0 + 1, side - 1);
  const float dy = y - static_cast<float>(y0), dx = x - static_cast<float>(x0);
  return {{y0 * side + x0, y0 * side + x1, y1 * side + x0, y1 * side + x1},
          {(1 - dy) * (1 - dx), (1 - dy) * dx, dy * (1 - dx), dy * dx}};
}

}  // namespace

std::vector<PosEmbedTaps> vision_pos_embed_taps(const std::vector<ImageGrid>& grids, int64_t merge, int64_t side) {
  const std::vector<int32_t> coords = vision_patch_coords(grids, merge);
  std::vector<PosEmbedTaps> out;
  out.reserve(coords.size() / 2);
  int64_t p = 0;
  for (const ImageGrid& g : grids)
    for (int64_t k = 0; k < g.t * g.h * g.w; ++k, ++p)
      out.push_back(taps(coords[2 * p], coords[2 * p + 1], g.h, g.w, side));
  return out;
}

void vision_pos_embed_forward(float* out, const float* table, const std::vector<ImageGrid>& grids, int64_t merge,
                              int64_t side, int64_t dim) {
  const std::vector<PosEmbedTaps> all = vision_pos_embed_taps(grids, merge, side);
  for (int64_t p = 0; p < static_cast<int64_t>(all.size()); ++p) {
    const PosEmbedTaps& tp = all[p];
    float* o = out + p * dim;
    for (int64_t i = 0; i < dim; ++i) {
      float s = 0.0f;
      for (int k = 0; k < 4; ++k) s += tp.weight[k] * table[tp.row[k] * dim + i];
      o[i] = s;
    }
  }
}

void vision_pos_embed_backward(float* dtable, const float* dout, const std::vector<ImageGrid>& grids, int64_t merge,
                               int64_t side, int64_t dim) {
  const std::vector<PosEmbedTaps> all = vision_pos_embed_taps(grids, merge, side);
  for (int64_t p = 0; p < static_cast<int64_t>(all.size()); ++p) {
    const PosEmbedTaps& tp = all[p];
    const float* d = dout + p * dim;
    for (int k = 0; k < 4; ++k)
      for (int64_t i = 0; i < dim; ++i) dtable[tp.row[k] * dim + i] += tp.weight[k] * d[i];
  }
}

}  // namespace medix::cpu

namespace medix {
// The CPU backend's ops (core/backend_op.h).
MEDIX_CPU_OP(VisionPosEmbedForward, cpu::vision_pos_embed_forward);
MEDIX_CPU_OP(VisionPosEmbedBackward, cpu::vision_pos_embed_backward);
}  // namespace medix

// The op table's entries (core/op_registry.h): arguments with their shape and value rules, options,
// checks, and the call through a Backend.
namespace medix::op_decl {
namespace {

// Grids (t, h, w triples) are an option: host data that sets the patch count.
std::vector<ImageGrid> grids_of(const Attrs& a) {
  const std::vector<int64_t>* g = a.list("grids");
  const std::vector<int32_t> g32 = g ? std::vector<int32_t>(g->begin(), g->end()) : std::vector<int32_t>{};
  return image_grids(g32.data(), static_cast<int64_t>(g32.size()), a.i("merge"));
}

OpDef vision_pos_embed() {
  const std::vector<AttrSpec> attrs = {integer("merge", 1, 64), integer("side", 1, 65536), integer("dim", 1, kMaxDim),
                                       list_opt("grids")};
  auto patches = [](Attrs& a, const Lengths&) { a.num["patches"] = static_cast<double>(patch_count(grids_of(a))); };
  OpDef d = family("vision_pos_embed", op_ids<VisionPosEmbedForward, VisionPosEmbedBackward>());
  d.forward = {"visionPosEmbedForward",
               {in("table", "side*side*dim"), out("out", "patches*dim")},
               attrs,
               patches,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 be.run<VisionPosEmbedForward>(t.f("out"), t.f("table"), grids_of(a), a.i("merge"), a.i("side"),
                                               a.i("dim"));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"visionPosEmbedBackward",
                {in("dout", "patches*dim"), out("dtable", "side*side*dim")},
                attrs,
                patches,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  be.run<VisionPosEmbedBackward>(t.f("dtable"), t.f("dout"), grids_of(a), a.i("merge"), a.i("side"),
                                                 a.i("dim"));
                  return 0.0;
                }};
  return d;
}

}  // namespace

MEDIX_OP_TABLE_ENTRY(vision_pos_embed);

}  // namespace medix::op_decl

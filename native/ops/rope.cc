// Rotary position embedding ("rotate half" pairing), standard and multi-section, and the map from
// frequencies to position components used by Qwen2-VL / Qwen3-VL.
#include "rope.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/error.h"
#include "../core/threads.h"
#include "../core/op_table_dsl.h"

namespace medix {

std::vector<uint8_t> rope_section_map(int64_t head_dim, const std::vector<int64_t>& sections, bool interleaved) {
  MEDIX_CHECK(head_dim > 0 && head_dim % 2 == 0, "rope_section_map: head_dim must be even and > 0, got ", head_dim);
  MEDIX_CHECK(sections.size() == 3, "rope_section_map: sections must have 3 entries (time, height, width), got ",
              sections.size());
  const int64_t half = head_dim / 2;
  int64_t sum = 0;
  for (int64_t s : sections) {
    MEDIX_CHECK(s >= 0, "rope_section_map: sections must be >= 0, got ", s);
    sum += s;
  }
  MEDIX_CHECK(sum == half, "rope_section_map: sections [", sections[0], ", ", sections[1], ", ", sections[2],
              "] must sum to head_dim/2 = ", half, ", got ", sum);

  std::vector<uint8_t> map(static_cast<size_t>(half), 0);
  for (int64_t j = 0; j < half; ++j) {
    if (interleaved) {
      // Qwen3-VL: T H W T H W ... while the H and W sections last, then T for the rest.
      if (j % 3 == 1 && j < 3 * sections[1])
        map[j] = 1;
      else if (j % 3 == 2 && j < 3 * sections[2])
        map[j] = 2;
    } else {
      // Qwen2-VL: the first s0 frequencies from T, the next s1 from H, the last s2 from W.
      map[j] = j < sections[0] ? 0 : j < sections[0] + sections[1] ? 1 : 2;
    }
  }
  return map;
}

namespace cpu {
namespace {

// inv_freq[j] = 1 / theta^(2j / head_dim), evaluated in float32 step by step as torch does in
// Hugging Face's rotary embedding, so that angles match its fixtures to the last bit.
std::vector<float> inverse_frequencies(const RopeSpec& spec) {
  const int64_t half = spec.head_dim / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  for (int64_t j = 0; j < half; ++j) {
    const float exponent = static_cast<float>(2 * j) / static_cast<float>(spec.head_dim);
    inv[j] = 1.0f / std::pow(spec.theta, exponent);
  }
  return inv;
}

void check_spec(const RopeSpec& spec, const char* fn) {
  MEDIX_CHECK(spec.head_dim > 0 && spec.head_dim % 2 == 0, fn, ": head_dim must be even and > 0, got ", spec.head_dim);
  MEDIX_CHECK(spec.n_components >= 1, fn, ": n_components must be >= 1, got ", spec.n_components);
  if (spec.freq_component)
    for (int64_t j = 0; j < spec.head_dim / 2; ++j)
      MEDIX_CHECK(spec.freq_component[j] < spec.n_components, fn, ": freq_component[", j,
                  "] = ", int(spec.freq_component[j]), " is not below n_components = ", spec.n_components);
}

// Applies, to every head of every token, the rotation by `sign` * angle(t, j) to the pairs
// (src[j], src[j + half]), writing (or, with accumulate, adding) into dst. Forward is sign = +1;
// backward is the transpose of the rotation, i.e. sign = -1. dst may equal src when not accumulating.
template <bool accumulate>
void rotate(float* dst, const float* src, const int32_t* pos, int64_t T, int64_t n_heads, const RopeSpec& spec,
            float sign) {
  const int64_t hd = spec.head_dim, half = hd / 2;
  const std::vector<float> inv_freq = inverse_frequencies(spec);
  parallel_for(
      T,
      [&](int64_t t0, int64_t t1) {
        std::vector<float> cos_t(static_cast<size_t>(half)), sin_t(static_cast<size_t>(half));
        for (int64_t t = t0; t < t1; ++t) {
          // One token's angles serve all its heads. The angle is rounded to float32 before cos/sin
          // (as torch computes it); cos/sin themselves are evaluated in double and rounded.
          for (int64_t j = 0; j < half; ++j) {
            const int comp = spec.freq_component ? spec.freq_component[j] : 0;
            const float angle = static_cast<float>(pos[comp * T + t]) * inv_freq[j];
            cos_t[j] = static_cast<float>(std::cos(static_cast<double>(angle)));
            sin_t[j] = sign * static_cast<float>(std::sin(static_cast<double>(angle)));
          }
          for (int64_t h = 0; h < n_heads; ++h) {
            const float* s = src + (t * n_heads + h) * hd;
            float* d = dst + (t * n_heads + h) * hd;
            for (int64_t j = 0; j < half; ++j) {
              const float a = s[j], b = s[j + half];  // read both before writing: dst may be src
              const float ra = a * cos_t[j] - b * sin_t[j];
              const float rb = b * cos_t[j] + a * sin_t[j];
              if (accumulate) {
                d[j] += ra;
                d[j + half] += rb;
              } else {
                d[j] = ra;
                d[j + half] = rb;
              }
            }
          }
        }
      },
      std::max<int64_t>(1, 8192 / std::max<int64_t>(1, n_heads * hd)));
}

}  // namespace

void rope_forward(float* out, const float* x, const int32_t* pos, int64_t T, int64_t n_heads, const RopeSpec& spec) {
  check_spec(spec, "rope_forward");
  rotate<false>(out, x, pos, T, n_heads, spec, 1.0f);
}

void rope_backward(float* dx, const float* dout, const int32_t* pos, int64_t T, int64_t n_heads, const RopeSpec& spec) {
  check_spec(spec, "rope_backward");
  rotate<true>(dx, dout, pos, T, n_heads, spec, -1.0f);
}

}  // namespace cpu
}  // namespace medix

namespace medix {
// The CPU backend's ops (core/backend_op.h).
MEDIX_CPU_OP(RopeForward, cpu::rope_forward);
MEDIX_CPU_OP(RopeBackward, cpu::rope_backward);
}  // namespace medix

// The op table's entries (core/op_registry.h): arguments with their shape and value rules, options,
// checks, and the call through a Backend.
namespace medix::op_decl {
namespace {

// Rotary embedding: positions are [T], or [3, T] with multi-section options.
int64_t rope_positions(const Attrs& a, std::string* desc) {
  const bool sections = a.list("sections") != nullptr;
  *desc = sections ? "3*T" : "T";
  return (sections ? 3 : 1) * a.i("T");
}

std::vector<uint8_t> rope_map(const Attrs& a) {
  const std::vector<int64_t>* sections = a.list("sections");
  return sections ? rope_section_map(a.i("headDim"), *sections, a.b("interleaved")) : std::vector<uint8_t>{};
}

void check_rope(Attrs& a, const Lengths&) {
  MEDIX_CHECK(a.i("headDim") % 2 == 0, "option 'headDim' must be even, got ", a.i("headDim"));
  MEDIX_CHECK(a.f("theta") > 0, "option 'theta' must be > 0, got ", a.f("theta"));
  try {
    rope_map(a);
  } catch (const Error& e) {
    fail("option 'sections' is invalid: ", e.what());
  }
}

RopeSpec rope_spec(const Attrs& a, const std::vector<uint8_t>& map) {
  RopeSpec s;
  s.head_dim = a.i("headDim");
  s.theta = static_cast<float>(a.f("theta"));
  if (!map.empty()) {
    s.n_components = 3;
    s.freq_component = map.data();
  }
  return s;
}

OpDef rope() {
  const std::vector<AttrSpec> attrs = {
      integer("T", 1, kMaxTokens), integer("heads", 1, kMaxHeads),  integer("headDim", 2, kMaxHeads), number("theta"),
      list_opt("sections"),        boolean_or("interleaved", false)};
  ArgSpec pos = positions("pos", "");
  pos.length_fn = rope_positions;
  OpDef d = family("rope", op_ids<RopeForward, RopeBackward>());
  d.forward = {"ropeForward",
               {in("x", "T*heads*headDim"), pos, out("out", "T*heads*headDim")},
               attrs,
               check_rope,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 const std::vector<uint8_t> map = rope_map(a);
                 be.run<RopeForward>(t.f("out"), t.f("x"), t.i("pos"), a.i("T"), a.i("heads"), rope_spec(a, map));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"ropeBackward",
                {in("dout", "T*heads*headDim"), pos, out("dx", "T*heads*headDim")},
                attrs,
                check_rope,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  const std::vector<uint8_t> map = rope_map(a);
                  be.run<RopeBackward>(t.f("dx"), t.f("dout"), t.i("pos"), a.i("T"), a.i("heads"), rope_spec(a, map));
                  return 0.0;
                }};
  return d;
}

}  // namespace

MEDIX_OP_TABLE_ENTRY(rope);

}  // namespace medix::op_decl

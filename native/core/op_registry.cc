// The runner of the op table: option and argument checks from the declarations, backend memory for
// backends other than the CPU's. The entries themselves are at the end of native/ops/<family>.cc.
#include "op_registry.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "backend_op.h"
#include "bf16.h"
#include "cu_seqlens.h"
#include "error.h"

namespace medix {

double Attrs::f(const std::string& k) const {
  auto it = num.find(k);
  MEDIX_CHECK(it != num.end(), "option '", k, "' is missing");
  return it->second;
}

const std::vector<int64_t>* Attrs::list(const std::string& k) const {
  auto it = lists.find(k);
  return it == lists.end() ? nullptr : &it->second;
}

const Tensor& Tensors::get(const std::string& k) const {
  static const Tensor absent;
  auto it = t.find(k);
  return it == t.end() ? absent : it->second;
}

void* Tensors::typed(const std::string& k, DType want) const {
  const Tensor& x = get(k);
  MEDIX_CHECK(!x.data || x.dtype == want, "op table entry reads '", k, "' as ", dtype_name(want), " but it holds ",
              dtype_name(x.dtype));
  return x.data;
}

const OpDef& find_op(const std::string& family, DType dtype) {
  std::string known, dtypes;
  const char* last = "";
  for (const OpDef& d : op_table()) {
    if (family == d.family) {
      if (d.dtype == dtype) return d;
      dtypes += (dtypes.empty() ? "" : ", ") + std::string(dtype_name(d.dtype));
    }
    if (std::string(last) != d.family) known += (known.empty() ? "" : ", ") + std::string(d.family);
    last = d.family;  // a family's entries are adjacent
  }
  MEDIX_CHECK(dtypes.empty(), "op '", family, "' has no ", dtype_name(dtype), " entry (registered: ", dtypes, ")");
  fail("no op '", family, "' is registered (registered: ", known, ")");
}

const OpPass& find_pass(const std::string& name, const OpDef** def, DType dtype) {
  const size_t dot = name.rfind('.');
  const std::string pass = dot == std::string::npos ? "" : name.substr(dot + 1);
  MEDIX_CHECK(pass == "forward" || pass == "backward", "op name '", name,
              "' must be '<family>.forward' or '<family>.backward'");
  const OpDef& d = find_op(name.substr(0, dot), dtype);
  MEDIX_CHECK(pass == "forward" || d.has_backward, "op '", d.family, "' has no backward pass");
  if (def) *def = &d;
  return pass == "forward" ? d.forward : d.backward;
}

std::string missing_ops(const OpTable& ops, const OpDef& d) {
  std::string missing;
  for (int id : d.ops)
    if (!has_op(ops, id)) missing += (missing.empty() ? "" : ", ") + std::string(op_name(id));
  return missing;
}

bool supports(const OpTable& ops, const OpDef& d) { return missing_ops(ops, d).empty(); }

bool supports(const OpTable& ops, const std::string& family, DType dtype) {
  bool known = false;
  for (const OpDef& d : op_table()) {
    if (family != d.family) continue;
    known = true;
    if (d.dtype == dtype) return supports(ops, d);
  }
  if (!known) find_op(family);  // throws naming the registered families
  return false;
}

namespace {

// Evaluates a product shape ("T*heads*headDim", "ids.length*dim") against options and lengths.
int64_t eval_shape(const std::string& shape, const Attrs& a, const std::map<std::string, int64_t>& lengths) {
  int64_t n = 1;
  std::istringstream parts(shape);
  std::string f;
  while (std::getline(parts, f, '*')) {
    const size_t dot = f.find(".length");
    if (dot != std::string::npos)
      n *= lengths.at(f.substr(0, dot));
    else if (f[0] >= '0' && f[0] <= '9')
      n *= std::atoll(f.c_str());
    else
      n *= a.i(f);
  }
  return n;
}

void check_attrs(const OpPass& p, Attrs& a) {
  for (const AttrSpec& s : p.attrs) {
    if (!a.has(s.name)) {
      MEDIX_CHECK(!s.required, p.js_name, ": option '", s.name, "' is required");
      if (s.kind != AttrKind::IntList) a.num[s.name] = s.dflt;
      continue;
    }
    if (s.kind != AttrKind::Int) continue;
    const double d = a.f(s.name);
    if (!std::isfinite(d) || std::floor(d) != d || d < s.lo || d > s.hi) {
      std::ostringstream os;
      os << p.js_name << ": option '" << s.name << "' must be an integer in [" << static_cast<int64_t>(s.lo) << ", "
         << static_cast<int64_t>(s.hi) << "], got " << d;
      throw Error(os.str());
    }
  }
}

float value_at(const ArgSpec& s, const Tensor& t, int64_t i) {
  return s.dtype == DType::BF16 ? bf16_to_f32_scalar(static_cast<const uint16_t*>(t.data)[i])
                                : static_cast<const float*>(t.data)[i];
}

void check_values(const OpPass& p, const ArgSpec& s, const Tensor& t, const Attrs& a) {
  if (s.dtype != DType::I32) {
    if (s.values == Values::Any) return;
    for (int64_t i = 0; i < t.length; ++i) {
      const float x = value_at(s, t, i);
      if (!std::isfinite(x)) {
        std::ostringstream os;
        os << p.js_name << ": " << s.name << " contains a non-finite value (" << x << ") at index " << i;
        throw Error(os.str());
      }
      MEDIX_CHECK(s.values != Values::NonNegative || x >= 0, p.js_name, ": ", s.name, "[", i,
                  "] is negative (a second moment)");
    }
    return;
  }
  const int32_t* v = static_cast<const int32_t*>(t.data);
  if (s.values == Values::Offsets) {
    check_cu_seqlens(v, t.length, a.i(s.bound), p.js_name, s.name);
  } else if (s.values == Values::Ids) {
    const int64_t hi = a.i(s.bound);
    for (int64_t i = 0; i < t.length; ++i)
      MEDIX_CHECK(v[i] >= s.lo && v[i] < hi, p.js_name, ": ", s.name, "[", i, "] = ", v[i], " is out of range [", s.lo,
                  ", ", hi, ")");
  }
}

}  // namespace

int64_t arg_length(const ArgSpec& s, const Attrs& a, const std::map<std::string, int64_t>& lengths, std::string* desc) {
  *desc = s.shape;
  if (s.length_fn) return s.length_fn(a, desc);
  return desc->empty() ? -1 : eval_shape(*desc, a, lengths);
}

std::map<std::string, int64_t> check_call(const OpPass& p, Attrs& a, const Tensors& host) {
  check_attrs(p, a);
  std::map<std::string, int64_t> lengths;
  for (const ArgSpec& s : p.args) {
    if (s.role == Role::Out) continue;
    const bool given = host.t.count(s.name) > 0;
    MEDIX_CHECK(given || s.optional, p.js_name, ": ", s.name, " is required");
    if (given) lengths[s.name] = host.get(s.name).length;
  }
  if (p.derive) {
    try {
      p.derive(a, lengths);
    } catch (const Error& e) {
      fail(p.js_name, ": ", e.what());
    }
  }
  std::map<std::string, int64_t> out;
  for (const ArgSpec& s : p.args) {
    const bool given = s.role == Role::Out ? (!s.when || a.b(s.when)) : lengths.count(s.name) > 0;
    if (!given) continue;
    std::string desc;
    const int64_t n = arg_length(s, a, lengths, &desc);
    if (s.role == Role::Out) {
      out[s.name] = n;
      continue;
    }
    const Tensor& t = host.get(s.name);
    MEDIX_CHECK(t.dtype == s.dtype, p.js_name, ": ", s.name, " must be ", dtype_name(s.dtype), ", got ",
                dtype_name(t.dtype));
    MEDIX_CHECK(!t.device, p.js_name, ": ", s.name, " must be host memory, not the ", t.device->name(), " backend's");
    if (n >= 0 && t.length != n) {
      std::ostringstream os;
      os << p.js_name << ": " << s.name << " must have length " << n;
      if (desc != std::to_string(n)) os << " (" << desc << ")";
      os << ", got " << t.length;
      throw Error(os.str());
    }
    check_values(p, s, t, a);
    out[s.name] = t.length;
  }
  return out;
}

double run_call(const OpDef& def, const OpPass& p, Backend& be, const Attrs& a, const Tensors& host) {
  const std::string missing = missing_ops(be.ops(), def);
  MEDIX_CHECK(missing.empty(), p.js_name, ": op '", def.family, "' in ", dtype_name(def.dtype),
              " is not implemented by backend '", be.name(), "' (it lacks ", missing, ")");
  for (const ArgSpec& s : p.args) {
    const Tensor& h = host.get(s.name);
    MEDIX_CHECK(!h.data || (h.dtype == s.dtype && !h.device), p.js_name, ": ", s.name, " must be host memory of ",
                dtype_name(s.dtype));
  }
  if (&be == &cpu_backend()) return p.run(be, a, host);  // host memory is the CPU backend's
  // Other backends: every argument in backend memory for the call.
  std::vector<BackendArray<uint8_t>> held;
  Tensors dev;
  for (const ArgSpec& s : p.args) {
    if (!host.t.count(s.name)) continue;
    const Tensor& h = host.get(s.name);
    const size_t bytes = dtype_bytes(s.dtype) * static_cast<size_t>(h.length);
    held.emplace_back(be, static_cast<int64_t>(bytes));
    dev.t[s.name] = {held.back().get(), h.length, s.dtype, &be};
    if (s.role != Role::Out) be.from_host(held.back().get(), h.data, bytes);
  }
  const double value = p.run(be, a, dev);
  for (const ArgSpec& s : p.args) {
    const Tensor& h = host.get(s.name);
    if (host.t.count(s.name) && s.role != Role::In)
      be.to_host(h.data, dev.get(s.name).data, dtype_bytes(s.dtype) * static_cast<size_t>(h.length));
  }
  return value;
}

}  // namespace medix

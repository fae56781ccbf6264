#include "flat_units.h"

#include <algorithm>
#include <cctype>

#include "../core/error.h"

namespace medix {

int64_t FlatUnit::owned_count(int r) const { return std::clamp<int64_t>(numel - r * shard, 0, shard); }

std::string unit_key(const std::string& tensor_name) {
  std::vector<std::string> parts;
  for (size_t at = 0;;) {
    const size_t dot = tensor_name.find('.', at);
    parts.push_back(tensor_name.substr(at, dot == std::string::npos ? std::string::npos : dot - at));
    if (dot == std::string::npos) break;
    at = dot + 1;
  }
  auto numeric = [](const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
  };
  const auto index = std::find_if(parts.begin(), parts.end(), numeric);
  // "model.visual.merger.norm.weight" and "...merger.linear_fc1.weight" share "model.visual.merger".
  const size_t keep = index != parts.end() ? static_cast<size_t>(index - parts.begin()) + 1
                                           : std::clamp<size_t>(parts.size() - 1, 1, 3);
  std::string key = parts[0];
  for (size_t i = 1; i < keep; ++i) key += "." + parts[i];
  return key;
}

std::vector<FlatUnit> flat_units(const std::vector<int64_t>& numels, const std::vector<std::string>& keys, int ranks) {
  MEDIX_CHECK(ranks >= 1, "flat_units: ranks must be >= 1, got ", ranks);
  MEDIX_CHECK(numels.size() == keys.size(), "flat_units: ", numels.size(), " sizes but ", keys.size(), " keys");
  std::vector<FlatUnit> units;
  int64_t offset = 0, slice = 0;
  for (size_t i = 0; i < numels.size(); ++i) {
    if (units.empty() || keys[i] != keys[i - 1]) {
      if (!units.empty()) slice += units.back().shard;
      units.push_back(FlatUnit{static_cast<int64_t>(i), static_cast<int64_t>(i), offset, 0, 0, slice});
    }
    FlatUnit& u = units.back();
    u.end_tensor = static_cast<int64_t>(i) + 1;
    u.numel += numels[i];
    u.shard = (u.numel + ranks - 1) / ranks;
    offset += numels[i];
  }
  return units;
}

}  // namespace medix

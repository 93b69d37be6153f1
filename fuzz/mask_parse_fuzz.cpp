// Fuzz target of the mask syntax (ped::Mask::parse, core/mask.hpp), the text every command reads
// masks in. Mask::parse accepts only canonical text, so an accepted input must be exactly the
// name() of the mask it gave, and parsing that name again must give an equal mask. A refusal is a
// std::invalid_argument whose message is one line starting with "Mask::parse". An accepted mask
// that fits an 8 x 8 score matrix (validate) is evaluated at every pair, which reads its layout.
#include "core/mask.hpp"
#include "fuzz/fuzz_target.hpp"

#include <stdexcept>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::string_view target = "mask_parse";
  const std::string text(reinterpret_cast<const char*>(data), size);
  ped::Mask mask = ped::Mask::none();
  try {
    mask = ped::Mask::parse(text);
  } catch (const std::invalid_argument& error) {
    ped::fuzz::check_error_message(target, error.what(), "Mask::parse");
    return 0;
  } catch (const std::exception& error) {
    ped::fuzz::fail(target, std::string("Mask::parse threw another type than std::invalid_argument: ") + error.what());
  }
  const std::string name = mask.name();
  if (name != text) ped::fuzz::fail(target, "accepted text that is not the mask's name(): " + name);
  if (!(ped::Mask::parse(name) == mask)) ped::fuzz::fail(target, "name() does not parse back to the same mask");
  bool fits = true;
  try {
    mask.validate("mask_parse_fuzz", 8, 8);
  } catch (const std::invalid_argument&) {
    fits = false;  // an explicit layout of another size: visible() is not defined there
  }
  if (fits) {
    int seen = 0;
    for (std::int64_t i = 0; i < 8; ++i) {
      for (std::int64_t j = 0; j < 8; ++j) seen += mask.visible(i, j, 8, 8) ? 1 : 0;
    }
    if (seen < 0 || seen > 64) ped::fuzz::fail(target, "impossible count of visible pairs");
  }
  return 0;
}

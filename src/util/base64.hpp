// Standard base64 (RFC 4648, with '=' padding): what Go's encoding/json writes for []byte fields
// such as a Definition's raw text. Pure functions, no allocation beyond the result.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace rbox::base64 {

std::string encode(std::string_view data);
// nullopt when text is not padded standard base64.
std::optional<std::string> decode(std::string_view text);

}  // namespace rbox::base64

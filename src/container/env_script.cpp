// Implementation of container/env_script.hpp: word expansion and an evaluator over the AST of
// env_script_parse.hpp that throws Unsupported at the first construct it cannot reproduce
// exactly (code in branches that are never taken only has to parse).
#include "container/env_script.hpp"

#include <cctype>
#include <cstdlib>
#include <memory>
#include <set>

#include "container/env_script_parse.hpp"

namespace rbox::container {

namespace {

using sh::AndOr;
using sh::Cmd;
using sh::List;
using sh::name_char;
using sh::name_start;
using sh::Pipeline;
using sh::Tok;
using sh::Unsupported;

// ---- expansion ----------------------------------------------------------------------------

struct Expanded {
  std::string chars;
  std::vector<bool> splittable;  // char came from an unquoted expansion
  bool quoted = false;           // word had quotes: an empty result is still one field
  void add(char c, bool split) {
    chars += c;
    splittable.push_back(split);
  }
  void add(const std::string& s, bool split) {
    for (char c : s) add(c, split);
  }
};

class Expander {
 public:
  explicit Expander(const ShellVars& vars) : vars_(vars) {}

  // Expands raw (a word as tokenized). in_dq: raw is the inside of double quotes.
  void expand(std::string_view raw, bool in_dq, Expanded& out, bool word_start = true) const {
    for (size_t i = 0; i < raw.size(); ++i) {
      char c = raw[i];
      if (!in_dq && c == '\'') {
        size_t e = raw.find('\'', i + 1);
        if (e == std::string_view::npos) throw Unsupported{"unterminated single quote"};
        out.quoted = true;
        out.add(std::string(raw.substr(i + 1, e - i - 1)), false);
        i = e;
      } else if (c == '"') {
        if (in_dq) continue;  // a quote inside ${x:-"w"} in double quotes: removed
        size_t k = i + 1;
        while (k < raw.size() && raw[k] != '"') {
          if (raw[k] == '\\') ++k;
          ++k;
        }
        if (k >= raw.size()) throw Unsupported{"unterminated double quote"};
        out.quoted = true;
        expand(raw.substr(i + 1, k - i - 1), true, out, false);
        i = k;
      } else if (c == '\\') {
        if (i + 1 >= raw.size()) {
          out.add('\\', false);
          continue;
        }
        char n = raw[i + 1];
        if (!in_dq || n == '$' || n == '`' || n == '"' || n == '\\') {
          out.add(n, false);
        } else {
          out.add('\\', false);
          out.add(n, false);
        }
        out.quoted = out.quoted || !in_dq;
        ++i;
      } else if (c == '`') {
        throw Unsupported{"command substitution is not supported"};
      } else if (c == '$') {
        i = parameter(raw, i, in_dq, out);
      } else if (c == '~' && !in_dq && word_start && i == 0) {
        throw Unsupported{"tilde expansion is not supported"};
      } else {
        out.add(c, false);
      }
    }
  }

  std::string assign_value(std::string_view raw) const {
    Expanded e;
    expand(raw, false, e);
    return e.chars;
  }

  std::vector<std::string> fields(std::string_view raw) const {
    Expanded e;
    expand(raw, false, e);
    std::vector<std::string> out;
    std::string cur;
    bool started = false;
    for (size_t i = 0; i < e.chars.size(); ++i) {
      char c = e.chars[i];
      if (e.splittable[i] && (c == ' ' || c == '\t' || c == '\n')) {
        if (started) out.push_back(cur);
        cur.clear();
        started = false;
        continue;
      }
      if (e.splittable[i] && (c == '*' || c == '?' || c == '['))
        throw Unsupported{"unquoted expansion with glob characters is not supported"};
      cur += c;
      started = true;
    }
    if (started || (out.empty() && e.quoted && e.chars.empty())) out.push_back(cur);
    return out;
  }

 private:
  const ShellVars& vars_;

  std::optional<std::string> get(const std::string& name) const {
    auto it = vars_.find(name);
    if (it == vars_.end()) return std::nullopt;
    return it->second.value;
  }

  // raw[i] == '$'; returns the index of the last consumed character.
  size_t parameter(std::string_view raw, size_t i, bool in_dq, Expanded& out) const {
    bool split = !in_dq;
    if (i + 1 >= raw.size()) {
      out.add('$', false);
      return i;
    }
    char n = raw[i + 1];
    if (name_start(n)) {
      size_t k = i + 1;
      while (k < raw.size() && name_char(raw[k])) ++k;
      out.add(get(std::string(raw.substr(i + 1, k - i - 1))).value_or(""), split);
      return k - 1;
    }
    if (n == '{') {
      int depth = 0;
      size_t k = i + 1;
      for (; k < raw.size(); ++k) {
        if (raw[k] == '\\') {
          ++k;
          continue;
        }
        if (raw[k] == '{') ++depth;
        if (raw[k] == '}' && --depth == 0) break;
      }
      if (k >= raw.size()) throw Unsupported{"unterminated ${"};
      braced(raw.substr(i + 2, k - i - 2), in_dq, out);
      return k;
    }
    if (n == '(' || std::isdigit(static_cast<unsigned char>(n)) || n == '@' || n == '*' || n == '#' ||
        n == '?' || n == '$' || n == '!' || n == '-')
      throw Unsupported{std::string("$") + n + " is not supported"};
    out.add('$', false);
    return i;
  }

  void braced(std::string_view body, bool in_dq, Expanded& out) const {
    if (!body.empty() && body[0] == '#') {
      std::string name(body.substr(1));
      if (!is_shell_name(name)) throw Unsupported{"${" + std::string(body) + "} is not supported"};
      out.add(std::to_string(get(name).value_or("").size()), !in_dq);
      return;
    }
    size_t k = 0;
    while (k < body.size() && name_char(body[k])) ++k;
    std::string name(body.substr(0, k));
    if (!is_shell_name(name)) throw Unsupported{"${" + std::string(body) + "} is not supported"};
    auto value = get(name);
    if (k == body.size()) {
      out.add(value.value_or(""), !in_dq);
      return;
    }
    bool colon = body[k] == ':';
    size_t opi = colon ? k + 1 : k;
    if (opi >= body.size()) throw Unsupported{"${" + std::string(body) + "} is not supported"};
    char op = body[opi];
    std::string_view word = body.substr(opi + 1);
    bool is_set = value.has_value() && (!colon || !value->empty());
    if (op == '-') {
      if (is_set)
        out.add(*value, !in_dq);
      else
        expand(word, in_dq, out, false);
    } else if (op == '+') {
      if (is_set) expand(word, in_dq, out, false);
    } else {
      throw Unsupported{"${" + std::string(body) + "} is not supported"};
    }
  }
};

// ---- evaluation ---------------------------------------------------------------------------

class Evaluator {
 public:
  Evaluator(ShellVars& vars, const FileTest& ft) : vars_(vars), ft_(ft) {}

  int run(const List& l) {
    int st = 0;
    for (const auto& a : l) st = run(a);
    return st;
  }

 private:
  ShellVars& vars_;
  const FileTest& ft_;

  [[noreturn]] static void unsupported(int line, const std::string& why) {
    throw Unsupported{"line " + std::to_string(line) + ": " + why};
  }

  int run(const AndOr& a) {
    if (a.background) unsupported(a.parts[0].cmds[0].line, "background jobs are not supported");
    int st = run(a.parts[0]);
    for (size_t i = 0; i < a.ops.size(); ++i) {
      if ((a.ops[i] == Tok::kAnd) == (st == 0)) st = run(a.parts[i + 1]);
    }
    return st;
  }

  int run(const Pipeline& p) {
    if (p.cmds.size() != 1) unsupported(p.cmds[0].line, "pipes are not supported");
    return run(p.cmds[0]);
  }

  static bool is_assignment(const std::string& w) {
    auto eq = w.find('=');
    return eq != std::string::npos && eq > 0 && is_shell_name(std::string_view(w).substr(0, eq));
  }

  void assign(const std::string& w, bool do_export) {
    auto eq = w.find('=');
    Expander ex(vars_);
    std::string value = ex.assign_value(std::string_view(w).substr(eq + 1));
    auto& v = vars_[w.substr(0, eq)];
    v.value = std::move(value);
    if (do_export) v.exported = true;
  }

  int run(const Cmd& c) {
    if (c.kind == Cmd::kOpaque) unsupported(c.line, c.what + " is not supported");
    if (c.kind == Cmd::kIf) {
      for (const auto& [cond, body] : c.if_clause->branches)
        if (run(cond) == 0) return run(body);
      return c.if_clause->otherwise ? run(*c.if_clause->otherwise) : 0;
    }
    if (c.redirected) unsupported(c.line, "redirections are not supported");
    size_t first = 0;
    while (first < c.words.size() && is_assignment(c.words[first])) ++first;
    if (first == c.words.size()) {
      for (const auto& w : c.words) assign(w, false);
      return 0;
    }
    if (first > 0) unsupported(c.line, "assignments before a command are not supported");
    Expander ex(vars_);
    const std::string& cmd = c.words[0];
    if (cmd == "export") {
      for (size_t i = 1; i < c.words.size(); ++i) {
        const auto& w = c.words[i];
        if (is_assignment(w)) {
          assign(w, true);
          continue;
        }
        for (const auto& name : ex.fields(w)) {
          if (!is_shell_name(name)) unsupported(c.line, "export " + name + " is not supported");
          vars_[name].exported = true;
        }
      }
      return 0;
    }
    if (cmd == "unset") {
      for (size_t i = 1; i < c.words.size(); ++i)
        for (const auto& name : ex.fields(c.words[i])) {
          if (name == "-v") continue;
          if (!is_shell_name(name)) unsupported(c.line, "unset " + name + " is not supported");
          vars_.erase(name);
        }
      return 0;
    }
    if (cmd == ":" || cmd == "true") return 0;
    if (cmd == "false") return 1;
    if (cmd == "[" || cmd == "test") {
      std::vector<std::string> args;
      for (size_t i = 1; i < c.words.size(); ++i)
        for (auto& f : ex.fields(c.words[i])) args.push_back(std::move(f));
      if (cmd == "[") {
        if (args.empty() || args.back() != "]") unsupported(c.line, "'[' without ']'");
        args.pop_back();
      }
      TestExpr t{args, 0, ft_, c.line};
      if (args.empty()) return 1;
      bool r = t.or_expr();
      if (t.pos != args.size()) unsupported(c.line, "test expression is not supported");
      return r ? 0 : 1;
    }
    unsupported(c.line, "command '" + cmd + "' is not supported");
  }

  struct TestExpr {
    const std::vector<std::string>& a;
    size_t pos;
    const FileTest& ft;
    int line;

    size_t left() const { return a.size() - pos; }
    bool or_expr() {
      bool v = and_expr();
      while (left() > 1 && a[pos] == "-o") {
        ++pos;
        bool r = and_expr();
        v = v || r;
      }
      return v;
    }
    bool and_expr() {
      bool v = not_expr();
      while (left() > 1 && a[pos] == "-a") {
        ++pos;
        bool r = not_expr();
        v = v && r;
      }
      return v;
    }
    bool not_expr() {
      if (left() > 1 && a[pos] == "!") {
        ++pos;
        return !not_expr();
      }
      return primary();
    }
    static long number(const std::string& s, int line) {
      char* end = nullptr;
      long v = std::strtol(s.c_str(), &end, 10);
      if (s.empty() || *end) Evaluator::unsupported(line, "'" + s + "' is not a number");
      return v;
    }
    bool primary() {
      if (left() == 0) Evaluator::unsupported(line, "incomplete test expression");
      if (a[pos] == "(") Evaluator::unsupported(line, "parentheses in test are not supported");
      if (left() >= 3) {
        const std::string& op = a[pos + 1];
        const std::string& l = a[pos];
        const std::string& r = a[pos + 2];
        if (op == "=" || op == "==" || op == "!=") {
          pos += 3;
          return (l == r) == (op != "!=");
        }
        if (op == "-eq" || op == "-ne" || op == "-lt" || op == "-gt" || op == "-le" || op == "-ge") {
          pos += 3;
          long x = number(l, line), y = number(r, line);
          if (op == "-eq") return x == y;
          if (op == "-ne") return x != y;
          if (op == "-lt") return x < y;
          if (op == "-gt") return x > y;
          if (op == "-le") return x <= y;
          return x >= y;
        }
      }
      if (left() >= 2 && a[pos].size() == 2 && a[pos][0] == '-') {
        char op = a[pos][1];
        const std::string& arg = a[pos + 1];
        if (op == 'z' || op == 'n') {
          pos += 2;
          return arg.empty() == (op == 'z');
        }
        if (std::string_view("dfexrswLh").find(op) != std::string_view::npos) {
          if (!ft) Evaluator::unsupported(line, "file tests are not supported here");
          pos += 2;
          return ft(op == 'h' ? 'L' : op, arg);
        }
      }
      return !a[pos++].empty();
    }
  };
};

}  // namespace

bool is_shell_name(std::string_view s) {
  if (s.empty() || !name_start(s[0])) return false;
  for (char c : s)
    if (!name_char(c)) return false;
  return true;
}

ScriptOutcome run_env_script(std::string_view text, ShellVars& vars, const FileTest& file_test) {
  try {
    List list = sh::parse(sh::tokenize(text));
    ShellVars copy = vars;
    Evaluator ev(copy, file_test);
    ev.run(list);
    vars = std::move(copy);
    return {};
  } catch (const Unsupported& u) {
    return {false, u.why};
  }
}

std::optional<std::string> expand_double_quoted(std::string_view text, const ShellVars& vars) {
  try {
    Expanded e;
    Expander(vars).expand(text, true, e, false);
    return e.chars;
  } catch (const Unsupported&) {
    return std::nullopt;
  }
}

}  // namespace rbox::container

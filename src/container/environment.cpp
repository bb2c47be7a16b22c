// Implementation of container/environment.hpp. The step order mirrors runtime/action.sh line
// for line; a change to one needs the same change in the other (tests/unit/container covers the
// native side, tests/integration/50-runtime.sh runs both).
#include "container/environment.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace rbox::container {

namespace {

// Apptainer's alwaysPassKeys: survive --cleanenv.
bool always_pass(const std::string& k) {
  static const std::set<std::string> keys = {"TERM",        "http_proxy", "HTTP_PROXY", "https_proxy",
                                             "HTTPS_PROXY", "no_proxy",   "NO_PROXY",   "all_proxy",
                                             "ALL_PROXY",   "ftp_proxy",  "FTP_PROXY"};
  return keys.count(k) > 0;
}

// Apptainer's alwaysOmitKeys: never forwarded from the host; `false` ones cannot be injected.
bool always_omit(const std::string& k) {
  return k == "HOME" || k == "PATH" || k == "LD_LIBRARY_PATH" || k == "APPTAINER_SHELL" ||
         k == "APPTAINER_APPNAME" || k == "SINGULARITY_SHELL" || k == "SINGULARITY_APPNAME";
}
bool injection_refused(const std::string& k) {
  return always_omit(k) && k != "LD_LIBRARY_PATH" && k != "PATH";
}

const char* const kHostPrefixes[] = {"APPTAINER_", "SINGULARITY_", "RBOX_"};
// Lowest precedence first: a later prefix overrides an earlier one.
const char* const kInjectPrefixes[] = {"SINGULARITYENV_", "APPTAINERENV_", "RBOXENV_"};

void set_ordered(std::vector<EnvVar>& list, const std::string& name, const std::string& value) {
  for (auto& v : list)
    if (v.name == name) {
      v.value = value;
      return;
    }
  list.push_back({name, value});
}

std::string fixpath(const std::optional<std::string>& path) {
  if (!path) return kDefaultPath;
  std::string p = *path;
  for (const auto& d : str::split(kDefaultPath, ':')) {
    if (("::" + p + ":").find(":" + d + ":") == std::string::npos) p += (p.empty() ? "" : ":") + d;
  }
  return p;
}

void set_exported(ShellVars& vars, const std::string& k, const std::string& v) {
  vars[k] = ShellVar{v, true};
}

bool is_set(const ShellVars& vars, const std::string& k) {
  auto it = vars.find(k);
  return it != vars.end() && it->second.value.has_value();
}

std::string value_of(const ShellVars& vars, const std::string& k) {
  auto it = vars.find(k);
  return it == vars.end() ? "" : it->second.value.value_or("");
}

// Snippets larger than this go into several variables (Linux limits one environment string to
// 128 KiB, MAX_ARG_STRLEN).
constexpr size_t kChunk = 96 * 1024;

void add_chunks(std::vector<std::string>& env, const std::string& prefix,
                const std::vector<std::string>& lines) {
  std::vector<std::string> chunks(1);
  for (const auto& l : lines) {
    if (chunks.back().size() + l.size() > kChunk && !chunks.back().empty()) chunks.emplace_back();
    chunks.back() += l + "\n";
  }
  for (size_t i = 0; i < chunks.size(); ++i)
    env.push_back(prefix + "_" + std::to_string(i) + "=" + chunks[i]);
  env.push_back(prefix + "_N=" + std::to_string(chunks.size()));
}

}  // namespace

std::string dq_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

EnvVar parse_env_assignment(const std::string& text, const std::string& where) {
  auto eq = text.find('=');
  if (eq == std::string::npos || !is_shell_name(std::string_view(text).substr(0, eq)))
    throw Error(where + " '" + text + "': expected NAME=VALUE with NAME a shell variable name");
  return {text.substr(0, eq), text.substr(eq + 1)};
}

std::vector<EnvVar> evaluate_env_file(const std::string& path, const std::string& text,
                                      const std::vector<std::string>& host_environ) {
  ShellVars vars;
  for (const auto& e : host_environ) {
    auto eq = e.find('=');
    if (eq == std::string::npos) continue;
    vars[e.substr(0, eq)] = ShellVar{e.substr(eq + 1), true};
  }
  ShellVars before = vars;
  auto outcome = run_env_script(text, vars);
  if (!outcome.supported)
    throw Error("--env-file " + path + ": " + outcome.reason +
                "; use plain NAME=VALUE lines (with $VAR expansions) in env files");
  std::vector<EnvVar> out;
  for (const auto& [k, v] : vars) {
    if (!v.value) continue;
    auto it = before.find(k);
    if (it != before.end() && it->second.value == v.value) continue;
    out.push_back({k, *v.value});
  }
  return out;
}

EnvPlan plan_environment(const EnvInputs& in) {
  EnvPlan plan;
  plan.no_eval = in.no_eval;

  // Injected values: host prefixes (by precedence), then --env-file, then --env.
  std::vector<EnvVar> inject;
  std::map<std::string, std::string> inject_origin;
  auto add_inject = [&](const std::string& key, const std::string& value, const std::string& origin) {
    std::string k = key;
    if (k == "PATH") k = "SING_USER_DEFINED_PATH";
    if (k == "PREPEND_PATH") k = "SING_USER_DEFINED_PREPEND_PATH";
    if (k == "APPEND_PATH") k = "SING_USER_DEFINED_APPEND_PATH";
    if (injection_refused(k)) {
      plan.warnings.push_back("overriding " + k + " with " + origin + " is not permitted; ignored");
      return;
    }
    // Apptainer warns when two host prefixes disagree; --env-file/--env override silently.
    for (const auto& v : inject)
      if (v.name == k && v.value != value && !str::starts_with(origin, "--") &&
          !str::starts_with(inject_origin[k], "--"))
        plan.warnings.push_back(origin + " overrides " + inject_origin[k] + " with a different value");
    set_ordered(inject, k, value);
    inject_origin[k] = origin;
  };
  for (const char* prefix : kInjectPrefixes) {
    for (const auto& e : in.host_environ) {
      if (!str::starts_with(e, prefix)) continue;
      auto eq = e.find('=');
      if (eq == std::string::npos) continue;
      std::string key = e.substr(std::string_view(prefix).size(), eq - std::string_view(prefix).size());
      if (key.empty() || !is_shell_name(key)) continue;
      add_inject(key, e.substr(eq + 1), e.substr(0, eq));
    }
  }
  for (const auto& v : in.env_file_vars) add_inject(v.name, v.value, "--env-file " + v.name);
  for (const auto& v : in.cli_envs) add_inject(v.name, v.value, "--env " + v.name);
  plan.inject = inject;

  // The process environment Apptainer builds before its action script runs.
  std::vector<EnvVar> process;
  if (in.cleanenv) process.push_back({"LANG", "C"});
  for (const auto& e : in.host_environ) {
    auto eq = e.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    std::string k = e.substr(0, eq);
    bool prefixed = false;
    for (const char* p : kHostPrefixes) prefixed = prefixed || str::starts_with(k, p);
    for (const char* p : kInjectPrefixes) prefixed = prefixed || str::starts_with(k, p);
    if (prefixed || !is_shell_name(k)) continue;
    if (!always_pass(k) && (always_omit(k) || in.cleanenv)) continue;
    bool overridden = std::any_of(inject.begin(), inject.end(), [&](const EnvVar& v) { return v.name == k; });
    if (overridden) continue;
    set_ordered(process, k, e.substr(eq + 1));
  }
  set_ordered(process, "HOME", in.home);
  set_ordered(process, "PATH", kDefaultPath);
  for (const auto& v : in.runtime) set_ordered(process, v.name, v.value);
  if (!in.appname.empty()) set_ordered(process, "SINGULARITY_APPNAME", in.appname);
  if (!in.shell.empty()) set_ordered(process, "SINGULARITY_SHELL", in.shell);
  set_ordered(process, "PWD", in.pwd);

  // clear_env(): these stay visible while the env files run; the rest is restored afterwards.
  static const std::set<std::string> keep = {"PWD",
                                             "HOME",
                                             "OPTIND",
                                             "UID",
                                             "GID",
                                             "SINGULARITY_APPNAME",
                                             "SINGULARITY_SHELL",
                                             "APPTAINER_NAME",
                                             "APPTAINER_CONTAINER"};
  for (const auto& v : process) (keep.count(v.name) ? plan.keep : plan.restore).push_back(v);
  return plan;
}

NativeEnvironment evaluate_natively(const EnvPlan& plan, const ImageEnvironment& image,
                                    const FileTest& file_test) {
  NativeEnvironment out;
  ShellVars vars;
  for (const auto& v : plan.keep) set_exported(vars, v.name, v.value);

  auto source = [&](const std::string& name, const std::string& text) {
    auto r = run_env_script(text, vars, file_test);
    if (!r.supported) {
      out.supported = false;
      out.reason = name + ": " + r.reason;
      out.failed_file = name;
    }
    return r.supported;
  };
  auto inject = [&]() {
    for (const auto& v : plan.inject) {
      if (plan.no_eval) {
        set_exported(vars, v.name, v.value);
        continue;
      }
      auto value = expand_double_quoted(dq_escape(v.value), vars);
      if (!value) {
        out.supported = false;
        out.reason = "the value of " + v.name + " needs a shell to evaluate";
        return false;
      }
      set_exported(vars, v.name, *value);
    }
    return true;
  };

  bool has_runtimevars = false;
  if (image.has_env_dir) {
    bool injected = false;
    for (const auto& f : image.files) {
      if (f.name == "90-environment.sh" && !is_set(vars, "PATH"))
        set_exported(vars, "PATH", fixpath(std::nullopt));
      if (!source("/.singularity.d/env/" + f.name, f.text)) return out;
      if (f.name == "10-docker2singularity.sh" || f.name == "10-docker.sh") {
        std::optional<std::string> p;
        if (is_set(vars, "PATH")) p = value_of(vars, "PATH");
        set_exported(vars, "PATH", fixpath(p));
      }
      if (f.name == "99-base.sh") {
        if (!inject()) return out;
        injected = true;
      }
      if (f.name == "99-runtimevars.sh") has_runtimevars = true;
    }
    // Apptainer injects only after 99-base.sh; images without one (rbox's own minimal
    // images, hand-made sandboxes) still get the user's variables.
    if (!injected && !inject()) return out;
  } else {
    if (image.legacy_file) {
      if (!source("/environment", *image.legacy_file)) return out;
      std::optional<std::string> p;
      if (is_set(vars, "PATH")) p = value_of(vars, "PATH");
      set_exported(vars, "PATH", fixpath(p));
    }
    if (!inject()) return out;
  }
  if (!has_runtimevars) {  // the virtual 99-runtimevars.sh
    auto path = [&] { return value_of(vars, "PATH"); };
    if (!value_of(vars, "SING_USER_DEFINED_PREPEND_PATH").empty()) {
      set_exported(vars, "PATH", value_of(vars, "SING_USER_DEFINED_PREPEND_PATH") + ":" + path());
      vars.erase("SING_USER_DEFINED_PREPEND_PATH");
    }
    if (!value_of(vars, "SING_USER_DEFINED_APPEND_PATH").empty()) {
      set_exported(vars, "PATH", path() + ":" + value_of(vars, "SING_USER_DEFINED_APPEND_PATH"));
      vars.erase("SING_USER_DEFINED_APPEND_PATH");
    }
    if (!value_of(vars, "SING_USER_DEFINED_PATH").empty()) {
      set_exported(vars, "PATH", value_of(vars, "SING_USER_DEFINED_PATH"));
      vars.erase("SING_USER_DEFINED_PATH");
    }
    if (is_set(vars, "PATH")) vars["PATH"].exported = true;
  }
  // restore_env()
  for (const auto& v : plan.restore) {
    if (!is_set(vars, v.name))
      set_exported(vars, v.name, v.value);
    else if (value_of(vars, v.name).empty())
      vars.erase(v.name);
  }
  if (value_of(vars, "PS1").empty()) set_exported(vars, "PS1", "Apptainer> ");
  std::string ps1 = value_of(vars, "PS1");
  if (value_of(vars, "PROMPT_COMMAND").empty())
    set_exported(vars, "PROMPT_COMMAND", "PS1=\"" + ps1 + "\"; unset PROMPT_COMMAND");
  else
    set_exported(vars, "PROMPT_COMMAND",
                 value_of(vars, "PROMPT_COMMAND") +
                     "; PROMPT_COMMAND=\"${PROMPT_COMMAND%%; PROMPT_COMMAND=*}\"; PS1=\"" + ps1 + "\"");
  std::string envfile = value_of(vars, "APPTAINER_ENVIRONMENT");
  if (envfile.empty()) envfile = "/.singularity.d/env/91-environment.sh";
  set_exported(vars, "APPTAINER_ENVIRONMENT", envfile);
  set_exported(vars, "SINGULARITY_ENVIRONMENT", envfile);

  for (const auto& [k, v] : vars)
    if (v.exported && v.value) out.environ.push_back(k + "=" + *v.value);
  return out;
}

std::vector<std::string> shell_environment(const EnvPlan& plan, const std::string& action) {
  std::vector<std::string> env;
  for (const auto& v : plan.keep) env.push_back(v.name + "=" + v.value);
  std::vector<std::string> inject, restore;
  for (const auto& v : plan.inject)
    inject.push_back("export " + v.name + "=" +
                     (plan.no_eval ? str::shell_quote(v.value) : "\"" + dq_escape(v.value) + "\""));
  for (const auto& v : plan.restore)
    restore.push_back("__rbox_restore " + v.name + " " + str::shell_quote(v.value));
  add_chunks(env, "RBOX_ENV_INJECT_SH", inject);
  add_chunks(env, "RBOX_ENV_RESTORE_SH", restore);
  env.push_back("RBOX_ACTION=" + action);
  return env;
}

}  // namespace rbox::container

// build::Metadata — the /.singularity.d tree exactly as Apptainer lays it out: the base
// environment (dirs, legacy symlinks, env/action scripts from runtime/), OCI runscript and
// environment, SCIF apps, and after %post the help, labels, definition, environment and scripts.
// (The inspect-metadata.json SIF object is image::pack_sif's.) Writes only through RootFs.
#pragma once

#include <ctime>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "build/rootfs.hpp"
#include "deffile/definition.hpp"

namespace rbox::build {

// --section: which sections of the definition run ("all" by default).
class SectionFilter {
 public:
  SectionFilter() = default;
  // Comma list (setup,post,files,labels,environment,runscript,test,startscript,help,pre or all).
  // Throws with the list of valid names for anything else.
  static SectionFilter parse(const std::string& comma_list);
  bool runs(const std::string& section) const { return only_.empty() || only_.count(section) > 0; }
  bool all() const { return only_.empty(); }

 private:
  std::set<std::string> only_;
};

// What an OCI source says about the image (config object of the image configuration).
struct OciImageConfig {
  std::vector<std::string> env;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::map<std::string, std::string> labels;
  std::string config_json;  // the "config" object as JSON (SIF object oci-config.json)
  std::string base_name;    // e.g. "docker.io/library/debian:bookworm"
  std::string base_digest;  // manifest digest
};

// Facts about the build that become labels.
struct BuildInfo {
  std::string arch = "amd64";
  std::string arch_variant;
  bool force = false;
  bool update = false;
  std::time_t now = 0;  // 0: time(nullptr)
  std::string base_name, base_digest;
};

// Apptainer's makeBaseEnv: /.singularity.d/{libs,actions,env}, the mount-point directories, the
// legacy symlinks, empty /etc/hosts and /etc/resolv.conf, actions, env scripts, default runscript
// and startscript. overwrite=false (localimage) keeps files that already exist.
void write_base_environment(const RootFs& root, bool overwrite);

// The runscript Apptainer writes for an OCI image (OCI_ENTRYPOINT/OCI_CMD, --no-eval branch,
// and the `eval "set ${SINGULARITY_OCI_RUN}"` convention).
std::string oci_runscript(const std::vector<std::string>& entrypoint, const std::vector<std::string>& cmd);
// env/10-docker2singularity.sh: `export K="${K:-"v"}"` per variable, PATH unconditional,
// names that are not shell identifiers skipped.
std::string oci_env_script(const std::vector<std::string>& env);
// Runscript, 10-docker2singularity.sh and labels.json of an OCI source.
void write_oci_metadata(const RootFs& root, const OciImageConfig& config);

// SCIF apps of a stage (before %files): /scif/apps/NAME/{bin,lib,scif/env}, /scif/data/NAME/
// {input,output}, app scripts and labels, %appfiles copied with copy(src, dst_in_root), and
// env/94-appsbase.sh (empty without apps). Returns the %appinstall text appended to %post.
using HostCopy = std::function<void(const std::string& src, const std::string& dst_in_root)>;
std::string write_apps(const RootFs& root, const deffile::Definition& def, const HostCopy& copy);

// After %post (Apptainer's insertMetadata): runscript.help, labels.json (existing labels, then
// $APPTAINER_LABELS lines from %post, build labels, then %labels, which do not replace existing
// keys without --force), Singularity (previous one moved to bootstrap_history/), %environment,
// startscript, runscript, test. Warnings go to log::warn.
void write_metadata(const RootFs& root, const deffile::Definition& stage, const std::string& fullraw,
                    const SectionFilter& sections, const BuildInfo& info);

// The build labels Apptainer adds (exposed for tests).
std::map<std::string, std::string> build_labels(const deffile::Definition& stage, const BuildInfo& info);
// "Monday_2_August_2021_14:9:36_CDT" (Apptainer's org.label-schema.build-date).
std::string label_schema_date(std::time_t t);

// Go encoding/json conventions, so files match Apptainer's byte for byte: strings with <, >, &
// escaped; maps sorted by key; MarshalIndent(…, "", "\t") for labels.json.
std::string go_json_string(const std::string& s);
std::string go_json_labels(const std::map<std::string, std::string>& labels);

}  // namespace rbox::build

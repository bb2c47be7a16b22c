#!/usr/bin/python3
# Compares two unpacked root filesystems entry by entry (type, permission bits, size, content
# SHA-256, symlink target, xattrs, hard-link groups) and prints every difference: the check that
# rbox's layer application matches `umoci unpack --rootless`. Reads only; never follows symlinks.
#
# Usage: compare_trees.py EXPECTED_ROOT ACTUAL_ROOT [--devices-of=OCI_LAYOUT:TAG]
#   --devices-of  EXPECTED is umoci rootless output, which turns the image's device nodes into
#                 empty regular files, while ACTUAL (rbox, unprivileged) skips them: those paths
#                 (read from the image's gzip/xz/plain layers) may be missing from ACTUAL.
# Run as root (or as the owner of both trees) so unreadable modes do not get in the way.
# Exit status: 0 identical, 1 differences found.
import hashlib
import json
import os
import stat
import sys
import tarfile


def xattrs(p):
    out = {}
    try:
        names = os.listxattr(p, follow_symlinks=False)
    except OSError:
        return out
    for n in names:
        try:
            out[n] = os.getxattr(p, n, follow_symlinks=False)
        except OSError as e:
            out[n] = "<error %s>" % e.errno
    return out


def digest(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def scan(root):
    entries = {}
    inodes = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            m = st.st_mode
            e = {"type": stat.S_IFMT(m), "perm": oct(stat.S_IMODE(m)), "xattrs": xattrs(p)}
            if stat.S_ISREG(m):
                e["size"] = st.st_size
                e["sha256"] = digest(p)
                if st.st_nlink > 1:
                    inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISLNK(m):
                e["target"] = os.readlink(p)
            entries[rel] = e
        # os.walk does not descend into symlinked directories (followlinks=False).
    groups = {}
    for paths in inodes.values():
        key = tuple(sorted(paths))
        for path in paths:
            groups[path] = key
    for rel, e in entries.items():
        e["links"] = groups.get(rel, ())
    return entries


def image_devices(spec):
    """Paths of device nodes in the layers of OCI layout image LAYOUT:TAG."""
    layout, tag = spec.rsplit(":", 1)
    blob = lambda d: os.path.join(layout, "blobs", *d.split(":"))
    index = json.load(open(os.path.join(layout, "index.json")))
    desc = [m for m in index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][0]
    manifest = json.load(open(blob(desc["digest"])))
    devices = set()
    for layer in manifest["layers"]:
        with tarfile.open(blob(layer["digest"]), "r:*") as t:
            for m in t:
                if m.ischr() or m.isblk():
                    devices.add(os.path.normpath(m.name.lstrip("/")))
    return devices


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    devices = set()
    for a in sys.argv[1:]:
        if a.startswith("--devices-of="):
            devices = image_devices(a.split("=", 1)[1])
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    want, have = scan(args[0]), scan(args[1])
    problems = []
    for rel in sorted(set(want) | set(have)):
        a, b = want.get(rel), have.get(rel)
        if a is None:
            problems.append("only in %s: %s" % (args[1], rel))
            continue
        if b is None:
            if rel in devices and a["type"] == stat.S_IFREG and a["size"] == 0:
                continue  # umoci's placeholder for a device node
            problems.append("only in %s: %s" % (args[0], rel))
            continue
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                problems.append("%s: %s differs: %r vs %r" % (rel, k, a.get(k), b.get(k)))
    for p in problems[:200]:
        print(p)
    if len(problems) > 200:
        print("... %d more" % (len(problems) - 200))
    print("compared %d entries: %d difference(s)" % (len(want), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

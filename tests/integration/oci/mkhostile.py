#!/usr/bin/python3
# Writes an OCI layout of hostile images for the layer-application security tests: each tag is
# one attack (path traversal, absolute names, symlinked parents, a symlink as the final
# component, hard links and whiteouts pointing outside, symlink loops). Test data only: it
# writes the layout and nothing else; OUTSIDE is only named inside the tar entries.
#
# Usage: mkhostile.py LAYOUT_DIR OUTSIDE_DIR
# Prints one line per tag: "TAG EXPECT", EXPECT = ok (applies inside the root) or
# error:TEXT (the pull fails and its message contains TEXT).
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile


def layer(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            kind, name = e[0], e[1]
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            ti.mode = 0o644
            data = b""
            if kind == "file":
                data = e[2].encode()
                if len(e) > 3:
                    ti.mode = e[3]
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = e[2] if len(e) > 2 else 0o755
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e[2]
                ti.mode = 0o777
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e[2]
            elif kind == "chr":
                ti.type = tarfile.CHRTYPE
                ti.devmajor, ti.devminor = 1, 3
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data) if data else None)
    return buf.getvalue()


def main():
    out, outside = sys.argv[1], sys.argv[2].rstrip("/")
    up = "../" * 12
    cases = [
        ("dotdot", "ok", [[("file", up + outside.lstrip("/") + "/pwned-dotdot", "x")]]),
        ("absolute", "ok", [[("file", outside + "/pwned-abs", "x")]]),
        ("symlink-parent-abs", "ok", [[("symlink", "evil", outside)], [("file", "evil/pwned-symabs", "x")]]),
        ("symlink-parent-rel", "ok",
         [[("symlink", "evil", up + outside.lstrip("/"))], [("file", "evil/pwned-symrel", "x")]]),
        ("symlink-parent-same-layer", "ok", [[("symlink", "evil", outside), ("file", "evil/pwned-same", "x")]]),
        ("symlink-dotdot-parent", "ok", [[("symlink", "up", ".."), ("file", "up/up/up/pwned-up", "x")]]),
        ("final-symlink-file", "ok",
         [[("symlink", "victim", outside + "/secret")], [("file", "victim", "overwritten", 0o777)]]),
        ("final-symlink-dir", "ok", [[("symlink", "d", outside)], [("dir", "d", 0o777)]]),
        ("hardlink-dotdot", "error:does not exist", [[("hardlink", "hl", up + outside.lstrip("/") + "/secret")]]),
        ("hardlink-absolute", "error:does not exist", [[("hardlink", "hl", outside + "/secret")]]),
        ("hardlink-via-symlink", "error:does not exist",
         [[("symlink", "evil", outside), ("hardlink", "hl", "evil/secret")]]),
        ("hardlink-to-symlink", "ok",
         [[("symlink", "s", outside + "/secret"), ("hardlink", "h", "s")], [("file", "h", "replaced")]]),
        ("whiteout-via-symlink", "ok", [[("symlink", "evil", outside)], [("file", "evil/.wh.secret", "")]]),
        ("opaque-via-symlink", "ok", [[("symlink", "evil", outside)], [("file", "evil/.wh..wh..opq", "")]]),
        ("whiteout-dotdot", "ok", [[("file", "a", "x")], [("file", up + outside.lstrip("/") + "/.wh.secret", "")]]),
        ("symlink-loop", "error:too many levels of symbolic links",
         [[("symlink", "a", "b"), ("symlink", "b", "a"), ("file", "a/x", "x")]]),
        ("file-under-file", "error:not a directory", [[("file", "f", "x"), ("file", "f/g", "y")]]),
        ("empty-whiteout", "error:invalid whiteout", [[("file", "dir/.wh.", "")]]),
        ("root-replaced", "error:root directory", [[("file", "./", "x")]]),
        ("device-node", "ok", [[("dir", "dev"), ("chr", "dev/mem")]]),
    ]
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)

    def put(data):
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(out, "blobs", "sha256", h), "wb") as f:
            f.write(data)
        return "sha256:" + h, len(data)

    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
    for tag, expect, layers in cases:
        descs, diffs = [], []
        for entries in layers:
            raw = layer(entries)
            diffs.append("sha256:" + hashlib.sha256(raw).hexdigest())
            d, n = put(gzip.compress(raw, mtime=0))
            descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
        cfg = json.dumps({"architecture": arch, "os": "linux", "config": {},
                          "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
        cd, cn = put(cfg)
        man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd,
                                     "size": cn},
                          "layers": descs}).encode()
        md, mn = put(man)
        index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
                                   "size": mn, "annotations": {"org.opencontainers.image.ref.name": tag}})
        print(tag, expect)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')


if __name__ == "__main__":
    main()

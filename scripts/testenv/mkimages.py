#!/usr/bin/python3
# Builds rbox's test images as OCI image layouts without network (busybox, layers, devices,
# multiarch, debian) for scripts/setup-test-env.sh. Test data only: never run it on a real system
# path, it only writes below the output directory it is given.
#
# Usage: mkimages.py OUT_DIR --busybox /bin/busybox --arch DPKG_ARCH [--debian-tar ROOTFS.tar]
# Writes OUT_DIR/<name>/ (OCI layout, ref "latest" or "bookworm"), OUT_DIR/all/ (every image in
# one layout, refs = image names), OUT_DIR/layers.expect (what the unpacked layers image must
# look like; see check_tree.py) and OUT_DIR/digests.env (NAME_DIGEST=sha256:… per image).
# An image is rebuilt only when its inputs changed (OUT_DIR/<name>.key).
import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zlib

EPOCH = 1700000000  # fixed mtimes: same inputs give byte-identical layers and digests
CREATED = "2023-11-14T22:13:20Z"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
REF = "org.opencontainers.image.ref.name"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# dpkg architecture -> OCI (architecture, variant)
ARCHES = {"amd64": ("amd64", ""), "arm64": ("arm64", "v8"), "armhf": ("arm", "v7"),
          "i386": ("386", ""), "ppc64el": ("ppc64le", ""), "s390x": ("s390x", ""),
          "riscv64": ("riscv64", "")}


def jbytes(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


class Layout:
    """An OCI image layout directory being written (blobs + index.json)."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
        self.refs = []

    def blob(self, data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        p = os.path.join(self.path, "blobs", "sha256", digest)
        if not os.path.exists(p):
            with open(p, "wb") as f:
                f.write(data)
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}

    def tag(self, desc, ref, platform=None):
        d = dict(desc)
        if platform:
            d["platform"] = platform
        d["annotations"] = {REF: ref}
        self.refs.append(d)

    def finish(self):
        index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": self.refs}
        with open(os.path.join(self.path, "index.json"), "wb") as f:
            f.write(jbytes(index))


class Tar:
    """A layer tarball built entry by entry (PAX format: long/UTF-8 names and xattrs)."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tf = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _ti(self, name, kind, mode, uid=0, gid=0, mtime=EPOCH, xattrs=None):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = kind, mode, uid, gid, mtime
        ti.uname = ti.gname = ""
        if xattrs:
            ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
        return ti

    def dir(self, name, mode=0o755, **kw):
        self.tf.addfile(self._ti(name, tarfile.DIRTYPE, mode, **kw))

    def file(self, name, data, mode=0o644, **kw):
        if isinstance(data, str):
            data = data.encode()
        ti = self._ti(name, tarfile.REGTYPE, mode, **kw)
        ti.size = len(data)
        self.tf.addfile(ti, io.BytesIO(data))

    def symlink(self, name, target, **kw):
        ti = self._ti(name, tarfile.SYMTYPE, 0o777, **kw)
        ti.linkname = target
        self.tf.addfile(ti)

    def hardlink(self, name, target, **kw):
        ti = self._ti(name, tarfile.LNKTYPE, 0o644, **kw)
        ti.linkname = target
        self.tf.addfile(ti)

    def fifo(self, name, mode=0o644):
        self.tf.addfile(self._ti(name, tarfile.FIFOTYPE, mode))

    def device(self, name, kind, major, minor, mode=0o666):
        ti = self._ti(name, kind, mode)
        ti.devmajor, ti.devminor = major, minor
        self.tf.addfile(ti)

    def whiteout(self, name):
        self.file(name, b"", mode=0o600)

    def close(self):
        self.tf.close()
        return self.buf.getvalue()


def compress(data, how):
    """Returns (blob bytes, media type) for an uncompressed layer tar."""
    if how == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0), MT_LAYER + "+gzip"
    if how == "zstd":
        out = subprocess.run(["zstd", "-q", "-3", "-c"], input=data, stdout=subprocess.PIPE,
                             check=True).stdout
        return out, MT_LAYER + "+zstd"
    return data, MT_LAYER


def image(layout, layers, config, arch, variant=""):
    """Writes layer blobs, config and manifest; returns the manifest descriptor."""
    descs, diff_ids, history = [], [], []
    for comment, tar_bytes, how in layers:
        blob, mt = compress(tar_bytes, how)
        descs.append(layout.blob(blob, mt))
        diff_ids.append("sha256:" + hashlib.sha256(tar_bytes).hexdigest())
        history.append({"created": CREATED, "created_by": "rbox mkimages.py: " + comment})
    return finish_image(layout, descs, diff_ids, history, config, arch, variant)


def finish_image(layout, descs, diff_ids, history, config, arch, variant=""):
    cfg = {"created": CREATED, "architecture": arch, "os": "linux", "config": config,
           "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history}
    if variant:
        cfg["variant"] = variant
    manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
                "config": layout.blob(jbytes(cfg), MT_CONFIG), "layers": descs}
    return layout.blob(jbytes(manifest), MT_MANIFEST)


def platform(arch, variant):
    p = {"architecture": arch, "os": "linux"}
    if variant:
        p["variant"] = variant
    return p


# ---------------------------------------------------------------- busybox


def busybox_layer(busybox):
    t = Tar()
    for d, mode in [("bin", 0o755), ("sbin", 0o755), ("usr", 0o755), ("usr/bin", 0o755),
                    ("usr/sbin", 0o755), ("etc", 0o755), ("root", 0o700), ("home", 0o755),
                    ("tmp", 0o1777), ("var", 0o755), ("var/tmp", 0o1777), ("proc", 0o555),
                    ("sys", 0o555), ("dev", 0o755)]:
        t.dir(d, mode)
    with open(busybox, "rb") as f:
        t.file("bin/busybox", f.read(), 0o755)
    t.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
           "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    t.file("etc/group", "root:x:0:\nnogroup:x:65534:\n")
    applets = subprocess.run([busybox, "--list-full"], stdout=subprocess.PIPE, check=True,
                             text=True).stdout.split()
    for a in sorted(set(applets)):
        if a != "bin/busybox":
            t.symlink(a, "/bin/busybox")
    return t.close()


BUSYBOX_CONFIG = {"Env": [PATH_ENV], "Cmd": ["sh"],
                  "Labels": {"org.rbox.test.image": "busybox"}}


# ---------------------------------------------------------------- layers

LONG = "long-" + "x" * 190 + ".txt"  # 200 bytes: needs a PAX path record
UTF8 = "ünïcødé-文件-😀.txt"
DEEP = "/".join("level%02d-%s" % (i, "d" * 20) for i in range(6)) + "/deep.txt"


def prng_bytes(n):
    out, block, seed = bytearray(), 0, b"rbox"
    while len(out) < n:
        out += hashlib.sha256(seed + block.to_bytes(8, "little")).digest()
        block += 1
    return bytes(out[:n])


def layers_image():
    """Four layers (gzip, zstd, uncompressed, gzip) covering the tricky layer-application cases.
    Returns (layers, expectations); each expectation is a tab-separated line for check_tree.py."""
    big = prng_bytes(3 * 1024 * 1024 + 17)
    l1 = Tar()
    for d in ["a", "a/subdir", "a/subdir/deep", "opq", "opq/olddir", "hl", "cross", "sym",
              "perm", "names", "d2f", "mtime", "owned", "special", "big"]:
        l1.dir(d)
    l1.file("a/keep", "keep v1\n")
    l1.file("a/gone", "gone\n")
    l1.file("a/subdir/x", "x\n")
    l1.file("a/subdir/deep/y", "y\n")
    l1.file("opq/old1", "old1\n")
    l1.file("opq/olddir/f", "f\n")
    l1.file("hl/orig", "hard link target\n", 0o640)
    l1.hardlink("hl/link1", "hl/orig")
    l1.hardlink("hl/link2", "hl/orig")
    l1.file("cross/base", "cross-layer base\n")
    l1.symlink("sym/rel", "../a/keep")
    l1.symlink("sym/abs", "/a/keep")
    l1.symlink("sym/dangling", "/does/not/exist")
    l1.symlink("sym/dir", "../a")
    l1.symlink("sym/escape", "../../../../../etc/passwd")
    l1.dir("perm/private", 0o700)
    l1.file("perm/private/secret", "secret\n", 0o600)
    l1.file("perm/zero", "zero\n", 0o000)
    l1.file("perm/setuid", "#!/bin/sh\n", 0o4755)
    l1.file("perm/setgid", "#!/bin/sh\n", 0o2755)
    l1.dir("perm/sticky", 0o1777)
    l1.file("perm/exec", "#!/bin/sh\necho exec\n", 0o755)
    l1.dir("xattr", xattrs={"user.rbox.dir": "on a dir"})
    l1.file("xattr/file", "x\n", xattrs={"user.rbox.test": "hello", "user.rbox.other": "two"})
    l1.file("names/" + LONG, "long\n")
    l1.file("names/" + UTF8, "utf8\n")
    l1.file("names/space and 'quotes'", "space\n")
    l1.file("names/" + DEEP, "deep\n")
    l1.file("empty", b"")
    l1.file("f2d", "was a file\n")
    l1.file("d2f/child", "child\n")
    l1.file("mtime/old", "old\n", mtime=1000000000)
    l1.file("owned/u1000", "u1000\n", uid=1000, gid=1000)
    l1.dir("owned/nobody", uid=65534, gid=65534)
    l1.fifo("special/fifo")
    l1.file("big/random.bin", big)
    l1.file("big/zeros.bin", bytes(1024 * 1024))

    l2 = Tar()
    l2.whiteout("a/.wh.gone")  # file delete
    l2.whiteout("a/.wh.subdir")  # directory delete (whole subtree)
    l2.dir("opq")
    l2.whiteout("opq/.wh..wh..opq")  # opaque: hide everything below from lower layers
    l2.file("opq/new", "new\n")
    l2.hardlink("cross/link", "cross/base")  # hard link to a file from an earlier layer
    l2.file("a/keep", "keep v2\n")  # content replaced
    l2.whiteout("hl/.wh.link2")  # delete one name of a hard-linked file
    l2.whiteout(".wh.never-existed")  # whiteout of nothing: harmless

    l3 = Tar()
    l3.dir("f2d")  # file replaced by a directory
    l3.file("f2d/inner", "inner\n")
    l3.file("d2f", "now a file\n")  # directory (with children) replaced by a file
    l3.file("a/gone", "back again\n")  # recreated after its whiteout
    l3.file("xattr/file", "x2\n", xattrs={"user.rbox.test": "changed"})  # xattrs replaced too

    l4 = Tar()
    l4.dir("perm/private", 0o750)  # directory over directory: mode changes, children stay
    l4.symlink("sym/rel", "../opq/new")  # symlink replaced by another target

    layers = [("base tree", l1.close(), "gzip"), ("whiteouts and cross-layer link", l2.close(),
              "zstd"), ("type changes", l3.close(), "none"), ("late changes", l4.close(), "gzip")]

    def h(s):
        return hashlib.sha256(s if isinstance(s, bytes) else s.encode()).hexdigest()

    expect = [
        ("file", "a/keep", "0644", h("keep v2\n")),
        ("file", "a/gone", "0644", h("back again\n")),
        ("absent", "a/subdir"),
        ("absent", "opq/old1"), ("absent", "opq/olddir"),
        ("file", "opq/new", "0644", h("new\n")),
        ("file", "hl/orig", "0640", h("hard link target\n")),
        ("nlink", "hl/orig", "2"), ("same", "hl/orig", "hl/link1"), ("absent", "hl/link2"),
        ("file", "cross/base", "0644", h("cross-layer base\n")),
        ("nlink", "cross/base", "2"), ("same", "cross/base", "cross/link"),
        ("symlink", "sym/rel", "../opq/new"), ("symlink", "sym/abs", "/a/keep"),
        ("symlink", "sym/dangling", "/does/not/exist"), ("symlink", "sym/dir", "../a"),
        ("symlink", "sym/escape", "../../../../../etc/passwd"),
        ("dir", "perm/private", "0750"),
        ("file", "perm/private/secret", "0600", h("secret\n")),
        ("file", "perm/zero", "0000", h("zero\n")),
        ("file", "perm/setuid", "4755", h("#!/bin/sh\n")),
        ("file", "perm/setgid", "2755", h("#!/bin/sh\n")),
        ("dir", "perm/sticky", "1777"),
        ("file", "perm/exec", "0755", h("#!/bin/sh\necho exec\n")),
        ("dir", "xattr", "0755"), ("xattr", "xattr", "user.rbox.dir", "on a dir"),
        ("file", "xattr/file", "0644", h("x2\n")),
        ("xattr", "xattr/file", "user.rbox.test", "changed"),
        ("noxattr", "xattr/file", "user.rbox.other"),
        ("file", "names/" + LONG, "0644", h("long\n")),
        ("file", "names/" + UTF8, "0644", h("utf8\n")),
        ("file", "names/space and 'quotes'", "0644", h("space\n")),
        ("file", "names/" + DEEP, "0644", h("deep\n")),
        ("file", "empty", "0644", h(b"")),
        ("dir", "f2d", "0755"), ("file", "f2d/inner", "0644", h("inner\n")),
        ("file", "d2f", "0644", h("now a file\n")), ("absent", "d2f/child"),
        ("mtime", "mtime/old", "1000000000"), ("mtime", "a/keep", str(EPOCH)),
        ("owner", "owned/u1000", "1000:1000"), ("owner", "owned/nobody", "65534:65534"),
        ("fifo", "special/fifo", "0644"),
        ("file", "big/random.bin", "0644", h(big)),
        ("file", "big/zeros.bin", "0644", h(bytes(1024 * 1024))),
        ("absent", "never-existed"), ("nowhiteouts", "."),
    ]
    return layers, ["\t".join(e) for e in expect]


LAYERS_CONFIG = {"Env": [PATH_ENV, "RBOX_TEST_VAR=layers value"], "Entrypoint": ["/entry"],
                 "Cmd": ["arg one", "arg2"], "WorkingDir": "/a", "User": "1000:1000",
                 "Labels": {"org.rbox.test.image": "layers", "org.rbox.test.multi": "a=b c"}}


def devices_layer():
    t = Tar()
    t.dir("dev")
    t.device("dev/null", tarfile.CHRTYPE, 1, 3)
    t.device("dev/zero", tarfile.CHRTYPE, 1, 5)
    t.device("dev/loop-test", tarfile.BLKTYPE, 7, 200, 0o660)
    t.fifo("dev/fifo")
    t.file("regular", "regular\n")
    return t.close()


# ---------------------------------------------------------------- debian


def debian_layer(layout, tar_path):
    """gzip-compresses the debootstrap tarball into a blob in one streaming pass."""
    tmp = os.path.join(layout.path, "blobs", "layer.tmp")
    raw, comp = hashlib.sha256(), hashlib.sha256()
    z = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: gzip wrapper, mtime 0
    size = 0
    with open(tar_path, "rb") as src, open(tmp, "wb") as dst:
        while True:
            chunk = src.read(1 << 20)
            if not chunk:
                break
            raw.update(chunk)
            out = z.compress(chunk)
            comp.update(out)
            dst.write(out)
            size += len(out)
        out = z.flush()
        comp.update(out)
        dst.write(out)
        size += len(out)
    os.rename(tmp, os.path.join(layout.path, "blobs", "sha256", comp.hexdigest()))
    return ({"mediaType": MT_LAYER + "+gzip", "digest": "sha256:" + comp.hexdigest(),
             "size": size}, "sha256:" + raw.hexdigest())


# ---------------------------------------------------------------- driver


def build(out, name, key, fn):
    """Runs fn(layout) into OUT/name unless OUT/name.key already equals key."""
    final, keyfile = os.path.join(out, name), os.path.join(out, name + ".key")
    if os.path.isdir(final) and os.path.exists(keyfile) and open(keyfile).read() == key:
        return False
    tmp = final + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    layout = Layout(tmp)
    fn(layout)
    layout.finish()
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    with open(keyfile, "w") as f:
        f.write(key)
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--busybox", default="/bin/busybox")
    ap.add_argument("--arch", required=True, help="dpkg architecture of the host")
    ap.add_argument("--debian-tar")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    arch, variant = ARCHES.get(args.arch, (args.arch, ""))
    with open(__file__, "rb") as f:
        me = hashlib.sha256(f.read()).hexdigest()
    with open(args.busybox, "rb") as f:
        bb = hashlib.sha256(f.read()).hexdigest()
    base_key = "%s %s %s" % (me, bb, args.arch)
    expect_lines = []

    def busybox(layout):
        layout.tag(image(layout, [("busybox-static", busybox_layer(args.busybox), "gzip")],
                         BUSYBOX_CONFIG, arch, variant), "latest")

    def layers(layout):
        ls, _ = layers_image()
        layout.tag(image(layout, ls, LAYERS_CONFIG, arch, variant), "latest")

    def layers_gzip(layout):
        # The same tree with every layer gzip-compressed: umoci 0.4 (the reference unpacker in
        # the tests) rejects zstd layers, so comparisons unpack this one with umoci.
        ls, _ = layers_image()
        ls = [(c, t, "gzip") for c, t, _ in ls]
        layout.tag(image(layout, ls, LAYERS_CONFIG, arch, variant), "latest")

    def devices(layout):
        layout.tag(image(layout, [("device nodes", devices_layer(), "gzip")],
                         {"Env": [PATH_ENV], "Labels": {"org.rbox.test.image": "devices"}},
                         arch, variant), "latest")

    def multiarch(layout):
        # Same busybox layer under three platforms; the host's entry is listed last so a
        # client that takes the first entry instead of matching the platform picks wrong.
        bl = busybox_layer(args.busybox)
        entries = []
        for a, v in [("arm64", "v8"), ("arm", "v7"), ("amd64", "")]:
            if a == arch:
                continue
            cfg = dict(BUSYBOX_CONFIG, Labels={"org.rbox.test.image": "multiarch-" + a + v})
            entries.append((image(layout, [("busybox-static", bl, "gzip")], cfg, a, v),
                            platform(a, v)))
        cfg = dict(BUSYBOX_CONFIG, Labels={"org.rbox.test.image": "multiarch-host"})
        entries.append((image(layout, [("busybox-static", bl, "gzip")], cfg, arch, variant),
                        platform(arch, variant)))
        index = {"schemaVersion": 2, "mediaType": MT_INDEX,
                 "manifests": [dict(d, platform=p) for d, p in entries]}
        layout.tag(layout.blob(jbytes(index), MT_INDEX), "latest")

    def debian(layout):
        desc, diff_id = debian_layer(layout, args.debian_tar)
        hist = [{"created": CREATED, "created_by": "debootstrap --variant=minbase bookworm"}]
        cfg = {"Env": [PATH_ENV], "Cmd": ["bash"], "Labels": {"org.rbox.test.image": "debian"}}
        layout.tag(finish_image(layout, [desc], [diff_id], hist, cfg, arch, variant),
                   "bookworm")

    images = [("busybox", base_key, busybox), ("layers", base_key, layers),
              ("layers-gzip", base_key, layers_gzip),
              ("devices", base_key, devices), ("multiarch", base_key, multiarch)]
    if args.debian_tar:
        st = os.stat(args.debian_tar)
        images.append(("debian", "%s %d %d" % (base_key, st.st_size, int(st.st_mtime)), debian))
    for name, key, fn in images:
        if build(args.out, name, key, fn):
            print("mkimages: built %s" % name, file=sys.stderr)

    _, expect_lines = layers_image()
    with open(os.path.join(args.out, "layers.expect"), "w") as f:
        f.write("# kind\tpath\targs (see scripts/testenv/check_tree.py)\n")
        f.write("\n".join(expect_lines) + "\n")

    # One layout holding every image under its name, blobs hard-linked (for oci:DIR:REF).
    all_dir = os.path.join(args.out, "all")
    shutil.rmtree(all_dir + ".tmp", ignore_errors=True)
    combined = Layout(all_dir + ".tmp")
    digests = []
    for name, _, _ in images:
        src = os.path.join(args.out, name)
        for b in os.listdir(os.path.join(src, "blobs", "sha256")):
            dst = os.path.join(combined.path, "blobs", "sha256", b)
            if not os.path.exists(dst):
                os.link(os.path.join(src, "blobs", "sha256", b), dst)
        with open(os.path.join(src, "index.json")) as f:
            for d in json.load(f)["manifests"]:
                combined.tag({k: d[k] for k in ("mediaType", "digest", "size")}, name)
                digests.append("%s_DIGEST=%s" % (name.upper().replace("-", "_"), d["digest"]))
    combined.finish()
    shutil.rmtree(all_dir, ignore_errors=True)
    os.rename(combined.path, all_dir)
    with open(os.path.join(args.out, "digests.env"), "w") as f:
        f.write("\n".join(digests) + "\n")


if __name__ == "__main__":
    main()

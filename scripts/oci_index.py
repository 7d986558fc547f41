#!/usr/bin/python3
"""The OCI image index of archie's multi-platform image (scripts/build-image).

umoci writes one manifest per tag and no index that names manifests by platform, and skopeo
cannot make one; this writes it into an OCI layout:

    oci_index.py LAYOUT REF TAG=ARCH [TAG=ARCH ...]

reads each TAG's manifest from LAYOUT/index.json, checks that its image config says
linux/ARCH, stores an image index listing them with their platforms as a blob, and makes
LAYOUT/index.json name that index REF (and nothing else: `umoci gc` keeps what the index
refers to). Prints the index's digest. The same manifests give the same bytes.

    oci_index.py --digest-of-archive FILE.oci.tar

prints the digest of the one image (an index or a manifest) that an OCI archive's index.json
names: the digest a registry shows for the tag."""
import hashlib
import json
import os
import sys
import tarfile

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


def blob_path(layout, digest):
    algorithm, hex_digest = digest.split(":", 1)
    return os.path.join(layout, "blobs", algorithm, hex_digest)


def load_blob(layout, digest):
    with open(blob_path(layout, digest), "rb") as f:
        return json.load(f)


def write_index(layout, ref, pairs):
    index_json = os.path.join(layout, "index.json")
    with open(index_json) as f:
        top = json.load(f)
    by_ref = {d.get("annotations", {}).get(REF_NAME): d for d in top["manifests"]}
    manifests = []
    for tag, arch in pairs:
        if tag not in by_ref:
            sys.exit(f"oci_index.py: no image tagged {tag} in {layout}")
        d = by_ref[tag]
        config = load_blob(layout, load_blob(layout, d["digest"])["config"]["digest"])
        if (config.get("os"), config.get("architecture")) != ("linux", arch):
            sys.exit(f"oci_index.py: {tag}'s config says {config.get('os')}/{config.get('architecture')}, not linux/{arch}")
        manifests.append({"mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"],
                          "platform": {"architecture": arch, "os": "linux"}})
    index = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": manifests}
    blob = json.dumps(index, separators=(",", ":"), sort_keys=True).encode()
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    with open(blob_path(layout, digest), "wb") as f:
        f.write(blob)
    top["manifests"] = [{"mediaType": INDEX_TYPE, "digest": digest, "size": len(blob),
                         "annotations": {REF_NAME: ref}}]
    with open(index_json, "w") as f:
        json.dump(top, f, separators=(",", ":"))
    return digest


def archive_digest(path):
    with tarfile.open(path) as tar:
        member = tar.getmember("./index.json") if "./index.json" in tar.getnames() else tar.getmember("index.json")
        top = json.load(tar.extractfile(member))
    (image,) = top["manifests"]
    return image["digest"]


def main(argv):
    if len(argv) == 3 and argv[1] == "--digest-of-archive":
        print(archive_digest(argv[2]))
        return
    if len(argv) < 4 or any("=" not in a for a in argv[3:]):
        sys.exit(__doc__)
    print(write_index(argv[1], argv[2], [a.split("=", 1) for a in argv[3:]]))


if __name__ == "__main__":
    main(sys.argv)

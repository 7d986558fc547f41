#!/usr/bin/python3
"""Writes the SBOM of archie's container image: an SPDX 2.3 JSON document listing archie
itself and exactly the Debian packages of an unpacked image root filesystem.

    scripts/sbom.py --rootfs DIR --name archie --version 0.1.0 --revision COMMIT \
        --created 2025-01-01T00:00:00Z --binary-path /usr/local/bin/archie \
        --license Apache-2.0 --platform linux/amd64 --output build-image/archie-0.1.0.amd64.spdx.json

--platform (optional) names the image's platform in the document's name and namespace, so
the SBOMs of a multi-platform image's images are distinct documents.

The packages are the entries of DIR/var/lib/dpkg/status that dpkg-query -W lists (every
state but not-installed), so the SBOM names what `dpkg-query -W` names in the image.
Per package: the dpkg version, a purl (pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=
debian-VERSION_ID, VERSION_ID from the rootfs' os-release), and licenseDeclared from its
machine-readable copyright file (DEP-5, /usr/share/doc/PKG/copyright): the distinct short
names of its License fields, as SPDX ids where Debian's names differ (GPL-2+ ->
GPL-2.0-or-later, Expat -> MIT, ...), joined with AND; "or" choices are folded into the AND
(every license named anywhere in the package is listed). A name that is no SPDX id becomes
LicenseRef-NAME, defined in hasExtractedLicensingInfos. A copyright file in free text (or
none): NOASSERTION. Symbolic links are resolved inside DIR, never on the host.

Deterministic: the same inputs give the same bytes (sorted packages, SPDXIDs made from the
names, creationInfo.created = --created, no clock, no random namespace).
Standard library only (runs as /usr/bin/python3 from scripts/build-image)."""
import argparse
import collections
import hashlib
import json
import os
import re
import sys
import urllib.parse

SPDX_VERSION = "SPDX-2.3"
NOASSERTION = "NOASSERTION"
STATUS = "var/lib/dpkg/status"
DOC = "usr/share/doc"

# SPDX license list ids that Debian copyright files use (matched case-insensitively, so
# Debian's BSD-3-clause is BSD-3-Clause). A name not here becomes a LicenseRef: a real SPDX
# id missing from this table is still reported, only less precisely.
SPDX_LICENSES = """
0BSD AFL-2.1 AFL-3.0 AGPL-3.0-only AGPL-3.0-or-later Apache-1.0 Apache-1.1 Apache-2.0
APSL-2.0 Artistic-1.0 Artistic-1.0-Perl Artistic-2.0 Beerware blessing BSD-1-Clause
BSD-2-Clause BSD-2-Clause-Patent BSD-3-Clause BSD-3-Clause-Clear BSD-4-Clause BSL-1.0
bzip2-1.0.6 CC-BY-3.0 CC-BY-4.0 CC-BY-SA-3.0 CC-BY-SA-4.0 CC0-1.0 CDDL-1.0 CDDL-1.1 CPL-1.0
curl ECL-2.0 EPL-1.0 EPL-2.0 EUPL-1.2 FSFAP FSFUL FSFULLR FTL
GFDL-1.1-only GFDL-1.1-or-later GFDL-1.2-only GFDL-1.2-or-later GFDL-1.3-only
GFDL-1.3-or-later GPL-1.0-only GPL-1.0-or-later GPL-2.0-only GPL-2.0-or-later GPL-3.0-only
GPL-3.0-or-later HPND ICU IJG ISC LGPL-2.0-only LGPL-2.0-or-later LGPL-2.1-only
LGPL-2.1-or-later LGPL-3.0-only LGPL-3.0-or-later Libpng libpng-2.0 LPPL-1.3c MIT MIT-0
MIT-CMU MPL-1.1 MPL-2.0 MS-PL NCSA OFL-1.1 OpenSSL PHP-3.01 PostgreSQL PSF-2.0 Python-2.0
Ruby Sleepycat TCL Unicode-DFS-2015 Unicode-DFS-2016 Unlicense UPL-1.0 Vim W3C WTFPL X11
Zlib zlib-acknowledgement ZPL-2.1
""".split()
SPDX_EXCEPTIONS = """
Autoconf-exception-2.0 Autoconf-exception-3.0 Bison-exception-2.2 Classpath-exception-2.0
Font-exception-2.0 GCC-exception-2.0 GCC-exception-3.1 Libtool-exception Linux-syscall-note
LLVM-exception OpenJDK-assembly-exception-1.0 openvpn-openssl-exception
""".split()
LICENSE_BY_LOWER = {name.lower(): name for name in SPDX_LICENSES}
EXCEPTION_BY_LOWER = {name.lower(): name for name in SPDX_EXCEPTIONS}
# Debian short names (copyright-format 1.0) whose SPDX id is spelled differently.
DEBIAN_ALIASES = {"expat": "MIT", "cc0": "CC0-1.0", "apache-2": "Apache-2.0"}
GNU_LICENSE = re.compile(r"^(AGPL|LGPL|GPL|GFDL)-?(\d+(?:\.\d+)?)(\+|-or-later|-only)?$", re.I)
LICENSE_SPLIT = re.compile(r"\s*,?\s+(?:and|or)\s+", re.I)
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class SbomError(Exception):
    pass


def id_string(text):
    """SPDX idstring: letters, digits, '.' and '-' (other runs become one '-')."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def license_ref(name):
    return "LicenseRef-" + (id_string(name) or "unnamed")


def spdx_license(name):
    """One Debian short license name (e.g. 'GPL-2+', 'Expat', 'public-domain') as an SPDX
    id, 'ID WITH EXCEPTION', or a LicenseRef."""
    name = " ".join(name.split())
    with_exception = re.match(r"^(.+?) with (.+)$", name, re.I)
    if with_exception:  # "GPL-3+ with GCC-exception-3.1" or "... with Foo exception"
        base, exception = with_exception.groups()
        base_id = spdx_license(base)
        bare = re.sub(r"[ -]exception$", "", exception, flags=re.I).lower()
        exception_id = next((EXCEPTION_BY_LOWER[c] for c in (exception.lower(), bare, bare + "-exception")
                             if c in EXCEPTION_BY_LOWER), None)
        if exception_id and not base_id.startswith("LicenseRef-"):
            return f"{base_id} WITH {exception_id}"
        return license_ref(name)
    lower = name.lower()
    if lower in LICENSE_BY_LOWER:
        return LICENSE_BY_LOWER[lower]
    if lower in DEBIAN_ALIASES:
        return DEBIAN_ALIASES[lower]
    m = GNU_LICENSE.match(name)
    if m:
        family, version, suffix = m.group(1).upper(), m.group(2), (m.group(3) or "").lower()
        if "." not in version:
            version += ".0"
        candidate = f"{family}-{version}-{'or-later' if suffix in ('+', '-or-later') else 'only'}"
        if candidate.lower() in LICENSE_BY_LOWER:
            return LICENSE_BY_LOWER[candidate.lower()]
    return license_ref(name)


def deb822_paragraphs(text):
    """Paragraphs of a deb822 file as lists of (field, first line) in order; field names
    lower-cased, continuation lines (leading space or tab) skipped."""
    paragraphs, current = [], []
    for line in text.splitlines():
        if not line.strip():
            if current:
                paragraphs.append(current)
                current = []
            continue
        if line[0] in " \t" or line.startswith("#"):
            continue
        field, colon, value = line.partition(":")
        if colon:
            current.append((field.strip().lower(), value.strip()))
    if current:
        paragraphs.append(current)
    return paragraphs


def resolve_in_root(root, path):
    """The host path of `path` inside the tree `root`, following symbolic links as if
    `root` were / (an absolute link target stays inside root). None when a component is
    missing or links loop."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        host = os.path.join(root, *resolved, part)
        if os.path.islink(host):
            hops += 1
            if hops > 40:
                return None
            target = os.readlink(host)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        if not os.path.lexists(host):
            return None
        resolved.append(part)
    return os.path.join(root, *resolved)


def declared_license(rootfs, package):
    """(licenseDeclared, {LicenseRef id: Debian name}) from the package's copyright file."""
    path = resolve_in_root(rootfs, f"{DOC}/{package}/copyright")
    if path is None or not os.path.isfile(path):
        return NOASSERTION, {}
    with open(path, encoding="utf-8", errors="replace") as f:
        paragraphs = deb822_paragraphs(f.read())
    if not paragraphs or not any(field in ("format", "format-specification") for field, _ in paragraphs[0]):
        return NOASSERTION, {}
    ids, refs = set(), {}
    for paragraph in paragraphs:
        for field, value in paragraph:
            if field != "license" or not value:
                continue
            for name in LICENSE_SPLIT.split(value):
                name = name.strip(" ,")
                if not name:
                    continue
                spdx = spdx_license(name)
                ids.add(spdx)
                if spdx.startswith("LicenseRef-"):
                    refs.setdefault(spdx, set()).add(" ".join(name.split()))
    if not ids:
        return NOASSERTION, {}
    return " AND ".join(sorted(ids)), refs


def read_os_release(rootfs):
    for candidate in ("etc/os-release", "usr/lib/os-release"):
        path = resolve_in_root(rootfs, candidate)
        if path and os.path.isfile(path):
            values = {}
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    key, eq, value = line.strip().partition("=")
                    if eq:
                        values[key] = value.strip().strip("\"'")
            return values
    return {}


def dpkg_packages(rootfs):
    """The status file's packages as dicts, the way dpkg-query -W lists them (every state
    but not-installed), sorted by name and architecture."""
    path = resolve_in_root(rootfs, STATUS)
    if path is None or not os.path.isfile(path):
        raise SbomError(f"{os.path.join(rootfs, STATUS)} does not exist")
    with open(path, encoding="utf-8", errors="replace") as f:
        paragraphs = deb822_paragraphs(f.read())
    packages = []
    for paragraph in paragraphs:
        fields = dict(paragraph)
        if "package" not in fields:
            continue
        state = fields.get("status", "").split()
        if len(state) == 3 and state[2] == "not-installed":
            continue
        if not fields.get("version"):
            raise SbomError(f"{fields['package']} has no Version in {path}")
        packages.append(fields)
    packages.sort(key=lambda p: (p["package"], p.get("architecture", "")))
    return packages


def purl(name, version, arch, distro):
    quote = lambda s: urllib.parse.quote(s, safe=":")  # the purl spec never encodes ':'
    qualifiers = [f"arch={quote(arch)}"] if arch else []
    if distro:
        qualifiers.append(f"distro={quote(distro)}")
    return f"pkg:deb/debian/{quote(name.lower())}@{quote(version)}" + ("?" + "&".join(qualifiers) if qualifiers else "")


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_document(args):
    rootfs = os.path.abspath(args.rootfs)
    if not RFC3339_UTC.match(args.created):
        raise SbomError(f"--created {args.created!r} is not YYYY-MM-DDThh:mm:ssZ")
    binary = resolve_in_root(rootfs, args.binary_path)
    if binary is None or not os.path.isfile(binary):
        raise SbomError(f"{args.binary_path} is not a file in {rootfs}")
    os_release = read_os_release(rootfs)
    distro = f"{os_release.get('ID', 'debian')}-{os_release['VERSION_ID']}" if os_release.get("VERSION_ID") else ""

    app_id = "SPDXRef-Package-" + id_string(args.name)
    app = {
        "SPDXID": app_id,
        "name": args.name,
        "versionInfo": args.version,
        "primaryPackagePurpose": "APPLICATION",
        "supplier": NOASSERTION,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseDeclared": args.license,
        "licenseConcluded": args.license,
        "copyrightText": NOASSERTION,
        "checksums": [{"algorithm": "SHA256", "checksumValue": sha256_file(binary)}],
        "sourceInfo": f"built from revision {args.revision}; installed as {args.binary_path}",
    }
    packages, relationships, refs = [app], [], {}
    relationships.append({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                          "relatedSpdxElement": app_id})
    debs = dpkg_packages(rootfs)
    counts = collections.Counter(p["package"] for p in debs)
    multi_arch = {name for name, n in counts.items() if n > 1}  # one name, several architectures
    seen_ids = {app_id}
    for p in debs:
        name, version, arch = p["package"], p["version"], p.get("architecture", "")
        spdx_id = "SPDXRef-Package-deb-" + id_string(name) + (f"-{id_string(arch)}" if name in multi_arch else "")
        if spdx_id in seen_ids:
            raise SbomError(f"two packages map to SPDXID {spdx_id}")
        seen_ids.add(spdx_id)
        declared, package_refs = declared_license(rootfs, name)
        for ref, names in package_refs.items():
            entry = refs.setdefault(ref, {"names": set(), "packages": set()})
            entry["names"] |= names
            entry["packages"].add(name)
        source, _, source_version = p.get("source", name).partition(" ")
        source_version = source_version.strip("()") or version
        packages.append({
            "SPDXID": spdx_id,
            "name": name,
            "versionInfo": version,
            "supplier": "Organization: Debian",
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": False,
            "licenseDeclared": declared,
            "licenseConcluded": NOASSERTION,
            "copyrightText": NOASSERTION,
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": purl(name, version, arch, distro)}],
            "sourceInfo": f"built from Debian source package {source} {source_version}",
        })
        relationships.append({"spdxElementId": app_id, "relationshipType": "DEPENDS_ON",
                              "relatedSpdxElement": spdx_id})

    # One document per platform of a multi-platform image: its own name and namespace.
    platform = f"-{args.platform.replace('/', '-')}" if args.platform else ""
    document = {
        "spdxVersion": SPDX_VERSION,
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{args.name}{platform}-{args.version}",
        "documentNamespace": "https://spdx.org/spdxdocs/" + urllib.parse.quote(
            f"{args.name}{platform}-{args.version}-{args.revision}", safe=""),
        "creationInfo": {"created": args.created, "creators": [f"Tool: {args.name}-scripts-sbom.py"]},
        "packages": packages,
        "relationships": relationships,
    }
    if refs:
        document["hasExtractedLicensingInfos"] = [
            {"licenseId": ref, "name": " / ".join(sorted(entry["names"])),
             "extractedText": "The license named " + " / ".join(f'"{n}"' for n in sorted(entry["names"]))
                              + " in the Debian copyright file /usr/share/doc/PACKAGE/copyright of "
                              + ", ".join(sorted(entry["packages"])) + "; its text is there."}
            for ref, entry in sorted(refs.items())]
    return document


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rootfs", required=True, help="the unpacked image root filesystem")
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--revision", required=True, help="the commit the binary was built from")
    parser.add_argument("--created", required=True, help="YYYY-MM-DDThh:mm:ssZ (the image's creation time)")
    parser.add_argument("--binary-path", required=True, help="the application's path inside the rootfs")
    parser.add_argument("--license", required=True, help="the application's SPDX license expression")
    parser.add_argument("--platform", help="the image's platform, e.g. linux/arm64 (in the document's name)")
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    try:
        document = build_document(args)
    except (SbomError, OSError) as e:
        print(f"sbom.py: {e}", file=sys.stderr)
        return 1
    text = json.dumps(document, sort_keys=True, indent=1) + "\n"
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())

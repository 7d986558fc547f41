"""scripts/sbom.py, the image's SBOM writer, on a small fake root filesystem (no image build):
the SPDX 2.3 document lists exactly the packages and versions of the rootfs' dpkg status
file, with purls and the licenses of their machine-readable copyright files, plus archie
itself; two runs give the same bytes. scripts/test-image checks the SBOM of the real image
(tests/integration/test_image.py). Servers: none."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from testkit.paths import REPO

SBOM = os.path.join(REPO, "scripts", "sbom.py")
PYTHON = "/usr/bin/python3"
VERSION, REVISION, CREATED = "0.1.0", "0123456789abcdef0123456789abcdef01234567-dirty", "2025-01-02T03:04:05Z"
BINARY = b"\x7fELF not really archie\n"
DEP5 = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: x\n"

STATUS = """\
Package: libnodoc
Status: install ok installed
Architecture: amd64
Version: 3.0-2
Maintainer: Someone <someone@example.org>
Description: copyright behind a dangling link (like libgcc-s1's in the image)

Package: libfoo1
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: foo (1:2.0-1)
Version: 1:2.0-1+b1
Maintainer: Foo Team <foo@example.org>
Description: a library
 License: Zope-2.0 (a continuation line, not a field)

Package: libgone
Status: purge ok not-installed
Architecture: amd64

Package: base-thing
Status: install ok installed
Architecture: all
Version: 12.4+deb12u15
Maintainer: Debian Base <base@example.org>
Description: free-text copyright

Package: libbar++6
Status: install ok installed
Architecture: amd64
Source: bar-12
Version: 12.2.0-14+deb12u1
Maintainer: Bar Maintainers <bar@example.org>
Description: doc dir is an absolute link into the image
"""

FOO_COPYRIGHT = DEP5 + """
Files: *
Copyright: 2020 Foo
License: GPL-2+

Files: lib/*
Copyright: 2021 Foo
License: LGPL-2.1+ or Expat

Files: contrib/*
Copyright: 2022 Bar
License:   BSL-1.0 and Foo_Bar

Files: data/*
Copyright: none
License: public-domain

License: GPL-2+
 This program is free software.
 License: Zope-2.0 (a continuation line again)
 .
 More text.

License: Expat
 Permission is hereby granted.
"""

EXPECTED = {  # name: (version, arch, licenseDeclared)
    "base-thing": ("12.4+deb12u15", "all", "NOASSERTION"),
    "libbar++6": ("12.2.0-14+deb12u1", "amd64", "GPL-3.0-or-later WITH GCC-exception-3.1"),
    "libfoo1": ("1:2.0-1+b1", "amd64", "BSL-1.0 AND GPL-2.0-or-later AND LGPL-2.1-or-later AND "
                "LicenseRef-Foo-Bar AND LicenseRef-public-domain AND MIT"),
    "libnodoc": ("3.0-2", "amd64", "NOASSERTION"),
}


def write(root, path, text, mode="w"):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, mode) as f:
        f.write(text)


def make_rootfs(root):
    write(root, "var/lib/dpkg/status", STATUS)
    write(root, "etc/os-release", 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n')
    write(root, "usr/local/bin/archie", BINARY, "wb")
    write(root, "usr/share/doc/libfoo1/copyright", FOO_COPYRIGHT)
    # Absolute link: must resolve inside the rootfs, not on the host.
    write(root, "usr/share/doc/bar-base/copyright", DEP5 + "\nFiles: *\nCopyright: GCC\n"
          "License: GPL-3+ with GCC-exception-3.1\n")
    os.symlink("/usr/share/doc/bar-base", os.path.join(root, "usr/share/doc/libbar++6"))
    # Not machine-readable although a line looks like a field.
    write(root, "usr/share/doc/base-thing/copyright",
          "This is the Debian prepackaged version of the Debian Base System.\n\nLicense: GPL-2\n")
    os.symlink("gone-base", os.path.join(root, "usr/share/doc/libnodoc"))


def run_sbom(root, output, **overrides):
    args = {"rootfs": root, "name": "archie", "version": VERSION, "revision": REVISION, "created": CREATED,
            "binary-path": "/usr/local/bin/archie", "license": "Apache-2.0", "output": output}
    args.update(overrides)
    argv = [PYTHON, SBOM]
    for key, value in args.items():
        argv += [f"--{key}", value]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


class SbomTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="archie-sbom-")
        cls.root = os.path.join(cls.dir, "rootfs")
        make_rootfs(cls.root)
        cls.outputs = [os.path.join(cls.dir, f"{i}.spdx.json") for i in (1, 2)]
        for output in cls.outputs:
            r = run_sbom(cls.root, output)
            if r.returncode != 0:
                raise AssertionError(f"sbom.py failed ({r.returncode}): {r.stderr}")
        with open(cls.outputs[0], "rb") as f:
            cls.raw = f.read()
        cls.doc = json.loads(cls.raw)
        cls.by_name = {p["name"]: p for p in cls.doc["packages"]}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_two_runs_give_the_same_bytes(self):
        with open(self.outputs[1], "rb") as f:
            self.assertEqual(f.read(), self.raw)
        self.assertTrue(self.raw.endswith(b"\n"))

    def test_an_spdx_2_3_document_whose_references_resolve(self):
        doc = self.doc
        self.assertEqual(doc["spdxVersion"], "SPDX-2.3")
        self.assertEqual(doc["dataLicense"], "CC0-1.0")
        self.assertEqual(doc["SPDXID"], "SPDXRef-DOCUMENT")
        self.assertEqual(doc["documentNamespace"], f"https://spdx.org/spdxdocs/archie-{VERSION}-{REVISION}")
        self.assertEqual(doc["creationInfo"]["created"], CREATED)
        self.assertTrue(doc["creationInfo"]["creators"])
        ids = [p["SPDXID"] for p in doc["packages"]]
        self.assertEqual(len(ids), len(set(ids)))
        for spdx_id in ids:
            self.assertRegex(spdx_id, r"^SPDXRef-[A-Za-z0-9.-]+$")
        for p in doc["packages"]:
            for field in ("downloadLocation", "licenseDeclared", "licenseConcluded", "copyrightText"):
                self.assertIn(field, p, p["name"])
            self.assertFalse(p["filesAnalyzed"])  # no packageVerificationCode needed
        archie = self.by_name["archie"]["SPDXID"]
        deps = [p["SPDXID"] for p in doc["packages"] if p["name"] != "archie"]
        self.assertEqual(doc["relationships"][0], {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                                                   "relatedSpdxElement": archie})
        self.assertEqual(doc["relationships"][1:], [{"spdxElementId": archie, "relationshipType": "DEPENDS_ON",
                                                     "relatedSpdxElement": d} for d in deps])
        used = {ref for p in doc["packages"] for ref in re.findall(r"LicenseRef-[A-Za-z0-9.-]+", p["licenseDeclared"])}
        defined = {e["licenseId"] for e in doc.get("hasExtractedLicensingInfos", [])}
        self.assertEqual(used, defined)
        self.assertTrue(all(e["extractedText"] for e in doc["hasExtractedLicensingInfos"]))

    def test_the_packages_and_versions_are_those_of_the_status_file(self):
        debs = [p for p in self.doc["packages"] if p["name"] != "archie"]
        self.assertEqual([p["name"] for p in debs], sorted(EXPECTED))  # libgone is not installed
        for p in debs:
            version, arch, _ = EXPECTED[p["name"]]
            with self.subTest(package=p["name"]):
                self.assertEqual(p["versionInfo"], version)
                self.assertEqual(p["supplier"], "Organization: Debian")
                self.assertEqual(p["downloadLocation"], "NOASSERTION")
                (ref,) = p["externalRefs"]
                self.assertEqual((ref["referenceCategory"], ref["referenceType"]), ("PACKAGE-MANAGER", "purl"))
        purls = {p["name"]: p["externalRefs"][0]["referenceLocator"] for p in debs}
        # '+' is percent-encoded, ':' (the epoch) is not (purl spec, "Character encoding").
        self.assertEqual(purls["libbar++6"], "pkg:deb/debian/libbar%2B%2B6@12.2.0-14%2Bdeb12u1?arch=amd64&distro=debian-12")
        self.assertEqual(purls["libfoo1"], "pkg:deb/debian/libfoo1@1:2.0-1%2Bb1?arch=amd64&distro=debian-12")
        self.assertEqual(purls["base-thing"], "pkg:deb/debian/base-thing@12.4%2Bdeb12u15?arch=all&distro=debian-12")
        self.assertEqual(self.by_name["libfoo1"]["sourceInfo"], "built from Debian source package foo 1:2.0-1")

    def test_licenses_come_from_machine_readable_copyright_files(self):
        for name, (_, _, declared) in EXPECTED.items():
            with self.subTest(package=name):
                self.assertEqual(self.by_name[name]["licenseDeclared"], declared)
                self.assertEqual(self.by_name[name]["licenseConcluded"], "NOASSERTION")
                self.assertEqual(self.by_name[name]["copyrightText"], "NOASSERTION")
        infos = {e["licenseId"]: e for e in self.doc["hasExtractedLicensingInfos"]}
        self.assertEqual(infos["LicenseRef-Foo-Bar"]["name"], "Foo_Bar")
        self.assertIn("libfoo1", infos["LicenseRef-Foo-Bar"]["extractedText"])

    def test_archie_is_the_described_application(self):
        archie = self.by_name["archie"]
        self.assertEqual(self.doc["packages"][0], archie)
        self.assertEqual(archie["versionInfo"], VERSION)
        self.assertEqual(archie["primaryPackagePurpose"], "APPLICATION")
        self.assertEqual(archie["licenseDeclared"], "Apache-2.0")
        self.assertEqual(archie["checksums"], [{"algorithm": "SHA256", "checksumValue": hashlib.sha256(BINARY).hexdigest()}])
        self.assertIn(REVISION, archie["sourceInfo"])

    def test_each_platform_of_an_image_gets_a_document_of_its_own(self):
        docs = {}
        for platform in ("linux/amd64", "linux/arm64"):
            output = os.path.join(self.dir, platform.replace("/", "-") + ".spdx.json")
            r = run_sbom(self.root, output, platform=platform)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(output) as f:
                docs[platform] = json.load(f)
        self.assertEqual(docs["linux/arm64"]["name"], f"archie-linux-arm64-{VERSION}")
        self.assertEqual(docs["linux/arm64"]["documentNamespace"],
                         f"https://spdx.org/spdxdocs/archie-linux-arm64-{VERSION}-{REVISION}")
        self.assertNotEqual(docs["linux/amd64"]["documentNamespace"], docs["linux/arm64"]["documentNamespace"])
        self.assertNotEqual(docs["linux/amd64"]["documentNamespace"], self.doc["documentNamespace"])
        self.assertEqual(docs["linux/arm64"]["packages"], self.doc["packages"])

    def test_bad_inputs_fail_without_writing(self):
        output = os.path.join(self.dir, "bad.spdx.json")
        no_dpkg = os.path.join(self.dir, "no-dpkg")  # a binary but no status file
        write(no_dpkg, "usr/local/bin/archie", BINARY, "wb")
        for overrides, message in (({"created": "2025-01-02 03:04:05"}, "--created"),
                                   ({"binary-path": "/usr/bin/missing"}, "is not a file"),
                                   ({"rootfs": no_dpkg}, "status does not exist")):
            with self.subTest(overrides=overrides):
                r = run_sbom(self.root, output, **overrides)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(message, r.stderr)
                self.assertFalse(os.path.exists(output))


if __name__ == "__main__":
    unittest.main()

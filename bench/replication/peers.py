"""The peers archie is compared with, rclone and the AWS CLI: their settings (environment,
flags, config files) for the same servers, and a timed run of their commands, verified at the
destination."""
import os
import time

from testkit.ceph_rgw import AWS
from testkit.daemons import tail

from .common import Part, RunError, failed, log, redact, slug
from .measurement import run_pipeline, timeout_for
from .report import new_row


class Peers(Part):
    """Runs rclone and the AWS CLI against the servers; rows go to `report`, the servers' share
    to `meter`."""

    def __init__(self, args, work, servers, meter, report):
        super().__init__(args, work, servers, meter, report)
        self.aws_cfgs = {}  # max_concurrent_requests -> its AWS CLI config file

    def rclone_env(self):
        """rclone remotes src: and dst: (like CephRgw.rclone_env, for any two S3 sides)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
        env["RCLONE_CONFIG"] = os.path.join(self.work, "rclone.conf")
        open(env["RCLONE_CONFIG"], "a").close()
        for remote, side in (("SRC", self.servers.src), ("DST", self.servers.dst)):
            p = "RCLONE_CONFIG_%s_" % remote
            env.update({p + "TYPE": "s3", p + "PROVIDER": side.provider, p + "ENV_AUTH": "false",
                        p + "ACCESS_KEY_ID": side.access_key, p + "SECRET_ACCESS_KEY": side.secret_key,
                        p + "ENDPOINT": side.endpoint, p + "REGION": side.region, p + "FORCE_PATH_STYLE": "true"})
        if self.servers.src.ca_file:
            env["RCLONE_CA_CERT"] = self.servers.src.ca_file
        return env

    def rclone_flags(self, transfers):
        a = self.args
        flags = ["--transfers", str(transfers), "--checkers", str(transfers), "--s3-no-check-bucket",
                 "--s3-chunk-size", "%dM" % a.part_size_mib, "--s3-upload-cutoff", "%dM" % a.part_size_mib,
                 "--s3-upload-concurrency", str(a.parts_in_flight), "--retries", "1", "--low-level-retries", "10"]
        if a.rclone_no_check_dest:
            flags.append("--no-check-dest")
        return flags + a.rclone_extra.split()

    def aws_env(self, side, concurrency):
        """AWS CLI env for one side: path-style, `concurrency` requests in flight, part_size chunks."""
        key = concurrency
        if key not in self.aws_cfgs:
            path = os.path.join(self.work, "aws-c%d.config" % concurrency)
            with open(path, "w") as f:
                f.write("[default]\nregion = %s\ns3 =\n    addressing_style = path\n    max_concurrent_requests = %d\n"
                        "    multipart_threshold = %dMB\n    multipart_chunksize = %dMB\n"
                        % (side.region, concurrency, self.args.part_size_mib, self.args.part_size_mib))
            self.aws_cfgs[key] = path
        creds = os.path.join(self.work, "aws-credentials")
        open(creds, "a").close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": side.access_key, "AWS_SECRET_ACCESS_KEY": side.secret_key,
                    "AWS_DEFAULT_REGION": side.region, "AWS_CONFIG_FILE": self.aws_cfgs[key],
                    "AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": ""})
        if side.ca_file:
            env["AWS_CA_BUNDLE"] = side.ca_file
        return env

    def aws_argv(self, side, *args):
        return [AWS, "--endpoint-url", side.endpoint] + list(args)

    def run_steps(self, m, steps, timeout):
        """Run steps one after the other; a step is a pipeline [(argv, env), ...] (usually one
        command). Wall time, CPU and peak RSS summed/maxed over every process (os.wait4)."""
        cpu_u = cpu_s = 0.0
        rss = 0
        commands = []
        self.meter.settle()
        mark = self.meter.mark()
        t0 = time.monotonic()
        deadline = t0 + timeout
        for n, step in enumerate(steps):
            errs = [os.path.join(self.work, "%s-%s-%d-%d.stderr" % (slug(m["scenario"]), slug(m["tool"]), n, i))
                    for i in range(len(step))]
            commands += [redact(" ".join(argv), self.servers.secrets) for argv, _ in step]
            codes, user, system, peak = run_pipeline(step, deadline, errs, self.servers.dead_servers)
            cpu_u += user
            cpu_s += system
            rss = max(rss, peak)
            self.servers.check_servers()
            if time.monotonic() >= deadline:
                raise RunError("timed out after %.0f s: %s" % (timeout, commands[-1]))
            for code, err, (argv, _) in zip(codes, errs, step):
                if code != 0:
                    raise RunError("%s exited %d: %s" % (os.path.basename(argv[0]), code,
                                                         redact(tail(err, 8), self.servers.secrets)))
        m["wall_s"] = time.monotonic() - t0
        self.meter.use(m, mark)
        m.update(cpu_user_s=cpu_u, cpu_sys_s=cpu_s, cpu_s=cpu_u + cpu_s, peak_rss_mib=rss / 1024,
                 commands=commands)

    def run(self, scenario, tool, objects, nbytes, steps, checks, notes=""):
        """Measure one peer command set, verify, clean its destination prefix."""
        m = new_row(scenario, tool, objects, nbytes, notes=notes)
        log("%s: %s" % (scenario, tool))
        try:
            self.run_steps(m, steps, timeout_for(self.args.timeout_scale, nbytes * 2, objects))
            for bucket, prefix in checks:
                self.servers.verify(m, bucket, prefix, objects, nbytes)
            m["ok"] = True
        except Exception as e:  # noqa: BLE001 - a broken run must not stop the others
            failed(m, e)
        for bucket, prefix in checks:
            self.servers.clean_dst(bucket, prefix)
        self.servers.gc()
        return self.report.record(m)

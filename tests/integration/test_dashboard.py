"""The Grafana dashboard against real data: Debian's Prometheus scrapes a running archie
every second while it replicates a few objects, and every panel query of
deploy/components/monitoring/archie-dashboard.json must parse on that Prometheus; the
panels for metrics a replication always produces must return data. A renamed metric or a
broken query fails here instead of showing an empty panel to an operator.
Servers: nats-server, Ceph RGW, prometheus (all on 127.0.0.1)."""
import json
import os
import shutil
import tempfile
import time
import unittest
import urllib.parse

from testkit.archie_process import ArchieProcess
from testkit.config_builder import rgw_to_rgw_buckets, rgw_to_rgw_config
from testkit.daemons import spawn, terminate
from testkit.events import EVENT_SUBJECT, publish_event
from testkit.nats_client import NatsClient
from testkit.net import free_port, http_get
from testkit.paths import REPO
from testkit.rgw_user import RgwUser
from testkit.rig import Rig
from testkit.waiting import wait_until

DASHBOARD = os.path.join(REPO, "deploy", "components", "monitoring", "archie-dashboard.json")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
SRC_BUCKET, DST_BUCKET = "dash-source", "dash-replica"

# Panels with no data after a clean replication: nothing was dead-lettered, no store failed,
# every readiness probe passed and NATS never reconnected.
MAY_BE_EMPTY = {"Dead letters (24 h)", "Dead letters by code", "Store errors", "Readiness probes failing",
                "NATS reconnects",
                # The replication has no fleet budgets ([stores.NAME] max_bandwidth,
                # max_requests_per_second, max_transfers): nothing waits, nothing is handed back.
                "Throttling: time waited for budgets", "Handed back: no free transfer slot"}
# Queries (panel title, refId) that may be empty in a panel that must have data: the fleet
# budget lines next to what the stores get, for stores without a budget.
MAY_BE_EMPTY_QUERIES = {("Bandwidth per store vs fleet budget", "B"), ("Requests per store vs fleet budget", "B")}


def panel_queries():
    """(panel title, refId, PromQL) with Grafana's variables as Grafana would fill them in:
    every namespace, and the one install (scrape job) this test runs."""
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = (target["expr"].replace("$__rate_interval", "1m").replace("$namespace", ".*")
                    .replace("$job", "archie"))
            yield panel["title"], target["refId"], expr


class DashboardQueryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rig = Rig(nats=True, ceph=True)
        cls.rig.start()
        rgw_to_rgw_buckets(cls.rig, SRC_BUCKET, DST_BUCKET)
        cls.port = free_port()
        cls.archie = ArchieProcess(rgw_to_rgw_config(cls.rig, cls.port, SRC_BUCKET, DST_BUCKET))
        cls.prom_dir = tempfile.mkdtemp(prefix="archie-prometheus-")
        cls.prom_port = free_port()
        config = os.path.join(cls.prom_dir, "prometheus.yml")
        with open(config, "w") as f:
            # job "archie": what the ServiceMonitor names the install the bundle ships (its
            # app.kubernetes.io/instance); the dashboard's $job variable lists it.
            json.dump({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                       "scrape_configs": [{"job_name": "archie",
                                           "static_configs": [{"targets": [f"127.0.0.1:{cls.port}"]}]}]}, f)
        cls.prometheus = spawn([PROMETHEUS, f"--config.file={config}",
                                f"--storage.tsdb.path={os.path.join(cls.prom_dir, 'data')}",
                                f"--web.listen-address=127.0.0.1:{cls.prom_port}"],
                               os.path.join(cls.prom_dir, "prometheus.log"))
        cls.archie.wait_ready()

    @classmethod
    def tearDownClass(cls):
        terminate(cls.prometheus)
        cls.archie.stop()
        cls.rig.close()
        shutil.rmtree(cls.prom_dir, ignore_errors=True)

    def query(self, expr):
        url = f"http://127.0.0.1:{self.prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, _, body = http_get(url)
        return status, json.loads(body)

    def results(self, expr):
        """The query's result vector, or [] while Prometheus is still starting."""
        try:
            return self.query(expr)[1]["data"]["result"]
        except (OSError, KeyError, ValueError):
            return []

    def wait_for(self, pred, timeout, what):
        wait_until(pred, timeout, what, interval=0.5)

    def test_every_panel_query_parses_and_the_replication_panels_have_data(self):
        self.wait_for(lambda: self.results('up{job="archie"} == 1'), 60, "Prometheus to scrape archie")
        source = RgwUser(self.rig, "archie", 0)
        with NatsClient([self.rig.nats.url]) as nc:
            for i in range(3):
                key = f"dash/object-{i}.bin"
                body = os.urandom(1024 * 1024 + i)
                etag = source.put(SRC_BUCKET, key, body)  # asserts 200
                publish_event(nc, "s3:ObjectCreated:Put", SRC_BUCKET, key, subject=EVENT_SUBJECT, size=len(body),
                              etag=etag)
        acked = 'sum(archie_queue_outcomes_total{job="archie",outcome="ack"})'
        self.wait_for(lambda: any(float(r["value"][1]) >= 3 for r in self.results(acked)), 60,
                      "Prometheus to see three acks")
        time.sleep(3)  # a few more scrapes, so that rate() has points after the acks
        for title, ref, expr in panel_queries():
            with self.subTest(panel=title, query=expr):
                status, answer = self.query(expr)
                self.assertEqual((status, answer.get("status")), (200, "success"), answer.get("error"))
                if title not in MAY_BE_EMPTY and (title, ref) not in MAY_BE_EMPTY_QUERIES:
                    self.assertTrue(answer["data"]["result"], "no data")


if __name__ == "__main__":
    unittest.main()

"""The benchmark put together: the servers, the meter of what they do, archie, its peers, the
scenarios and the report, set up in that order and closed again."""
from .archie import Archie
from .environment import describe
from .measurement import ServerMeter
from .peers import Peers
from .report import Report
from .scenarios import Scenarios
from .servers import Servers


class Harness:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.report = Report(args.json)
        self.servers = Servers(args, self.report.problems)
        self.scenarios = None

    def setup(self):
        """Start (or reach) the servers, print what the benchmark runs with."""
        a, srv, report = self.args, self.servers, self.report
        srv.setup()
        report.mode = srv.mode
        report.meta = describe(a, srv)
        meter = ServerMeter(srv, report.problems)
        archie = Archie(a, self.work, srv, meter, report)
        peers = Peers(a, self.work, srv, meter, report)
        self.scenarios = Scenarios(a, self.work, srv, meter, report, archie, peers)

    def run(self):
        self.scenarios.run()

    def close(self):
        self.servers.close()

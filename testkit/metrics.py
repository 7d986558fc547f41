"""Prometheus metrics of archie's admin server: parsing the text format, scraping a port and
summing the samples of one metric."""
import re

from testkit.net import http_get


def parse_metrics(text):
    """[(name, labels dict, value)] from the Prometheus text format."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)', line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def scrape(port):
    """[(name, labels, value)] of the admin server on 127.0.0.1:port."""
    _, _, body = http_get(f"http://127.0.0.1:{port}/metrics")
    return parse_metrics(body.decode())


def metric(samples, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == x for k, x in labels.items()))

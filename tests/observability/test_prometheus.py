"""PrometheusHooks and its /metrics server, scraped over real HTTP during sandbox fan-outs."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import aiohttp
from conftest import MakeClient
from observability_helpers import otp
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from routee_viber_async import RouteeViberClient, Template
from routee_viber_async.cli._send_many import SendMany
from routee_viber_async.integrations.prometheus import PrometheusHooks, serve_metrics
from routee_viber_async.sandbox import Sandbox

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(url: str) -> Samples:
    """Every sample of the metrics page at ``url``, by name and labels."""
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_fan_out_is_counted_while_it_runs_and_scraped_over_http(
    sandbox: Sandbox, template: Template, make_client: MakeClient
) -> None:
    registry = CollectorRegistry()
    client = make_client(hooks=[PrometheusHooks(registry)])
    await client.templates.get(template.template_id)
    sandbox.inject_fault("service_unavailable")  # one retry, for routee_http_retries_total
    messages = [otp(sandbox, template, pin=f"{n:06d}") for n in range(40)]
    async with serve_metrics(0, registry=registry) as server:
        assert server.port > 0
        seen = 0
        during: Samples | None = None
        async for outcome in client.messages.send_many(messages, concurrency=4, rate_limit=400):
            assert outcome.ok
            seen += 1
            if seen == 10:
                during = await scrape(server.url)
                # Counted when a send ends, before its outcome is handed over.
                assert 10 <= value(during, "routee_client_sends_total", outcome="ok") < 40
                assert value(during, "routee_http_requests_in_flight") >= 0
        after = await scrape(server.url)
    assert during is not None
    assert value(after, "routee_client_sends_total", outcome="ok") == 40
    assert value(after, "routee_http_retries_total", reason="HTTP 503") == 1
    assert value(after, "routee_http_requests_in_flight") == 0
    assert value(after, "routee_rate_limit_wait_seconds_count") == 40
    posts = value(after, "routee_http_request_duration_seconds_count", method="POST", status="200")
    assert posts == 40
    assert value(after, "routee_http_request_duration_seconds_count", method="POST", status="503")
    assert value(after, "routee_token_fetches_total", outcome="ok") == 1


async def test_two_hooks_on_one_registry_share_its_metrics(
    sandbox: Sandbox, template: Template, make_client: MakeClient
) -> None:
    registry = CollectorRegistry()
    for _ in range(2):
        client = make_client(hooks=[PrometheusHooks(registry)])
        await client.messages.send(otp(sandbox, template))
    async with serve_metrics(0, registry=registry) as server:
        samples = await scrape(server.url)
    assert value(samples, "routee_client_sends_total", outcome="ok") == 2


async def test_send_many_command_serves_metrics_while_it_runs(
    sandbox: Sandbox, template: Template, tmp_path: Path
) -> None:
    rows = 30
    csv = tmp_path / "rows.csv"
    csv.write_text("to,pin\n" + "".join(f"+3069{i:08d},P{i:05d}Q\n" for i in range(rows)))
    err = io.StringIO()
    job = SendMany(
        input=csv,
        sender=sandbox.sender_id,
        template_id=template.template_id,
        lang="en",
        concurrency=2,
        rate=30.0,  # a run of about a second: long enough to be scraped in the middle
        metrics_port=0,
    )

    def factory(**options: object) -> RouteeViberClient:
        return RouteeViberClient(
            credentials=sandbox.credentials,
            base_url=sandbox.base_url,
            auth_url=sandbox.auth_url,
            **options,  # type: ignore[arg-type]
        )

    run = asyncio.create_task(job.run(factory, stderr=err))
    url = None
    async with asyncio.timeout(30):
        while url is None:
            await asyncio.sleep(0.005)
            assert not run.done(), err.getvalue()
            for line in err.getvalue().splitlines():
                if "metrics on " in line:
                    url = line.rsplit(" ", 1)[1]
        partial = None
        while not run.done():
            samples = await scrape(url)
            ok = value(samples, "routee_client_sends_total", outcome="ok")
            if 0 < ok < rows:
                partial = ok
                break
            await asyncio.sleep(0.01)
        assert await run == 0, err.getvalue()
    assert partial is not None, "never scraped in the middle of the run"
    # The server lived as long as the run, and no longer.
    try:
        await scrape(url)
    except aiohttp.ClientConnectionError:
        pass
    else:
        raise AssertionError("the metrics server outlived the command")

"""The opinion desk end to end: scoring posts on the way in, the latency of a warning on live
processes, and the hot-issue recompute over a million posts, each beside a baseline measured
in the same run.

    /tmp/cpvenv/bin/python -m benchmarks.opinion [--trials 5] [--lake-posts 1000000]
                                                 [--weibo-import] [--profile] [--no-write]

Everything runs in throwaway data dirs (SQLite store, lake, the server and the worker of the
latency trials); ../shared/data is read in place. Writes the "Opinion desk" section of
docs/benchmarks.md. Nothing here asserts a time, but the hot-issue figures are compared with
the hand-written SQL's and the run fails if they differ: a wrong fast answer is no figure.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from benchmarks.report import REPO, best, machine, one_core, rate, table, write_section

WEIBO = REPO.parent / "shared" / "data" / "zh" / "covid19_weibo_unlabeled_daily_2020.csv.gz"
HEADING = "Opinion desk"
SCORED = 20_000  # posts scored per run
DEMO_SEED = 2260
PUSH = "/api/v1/opinion/posts"
CATEGORY = "bench-water"
VOLUME_AT = 20  # matching posts in 24 h that raise the benchmark category's warning
BACKGROUND_EVERY = 2.0  # seconds between background pushes
BACKGROUND_POSTS = 50  # posts per background push
ISSUES = 500
MEMBER_SHARE = 0.3  # posts assigned to an issue
REGROUPED_SHARE = 0.1  # of those, moved to another issue by a later assignment
LAKE_DAYS = 30

# Saved rules beside the demo's two seeded concerns: 48 rules in 8 concerns, the kinds of
# query analysts write (AND/OR/NOT, phrases, NEAR/n, source:, lang: and area: filters),
# about what Weibo said in early 2020 and what a city hears every day.
CONCERNS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "口罩与防护物资": (
        "supplies",
        [
            ("口罩买不到", "口罩 AND (买不到 OR 断货 OR 缺货 OR 抢不到 OR 卖完)"),
            ("防护用品涨价", "(口罩 OR 酒精 OR 消毒液) NEAR/5 (涨价 OR 哄抬 OR 高价 OR 暴利)"),
            ("假冒口罩", "(假冒 OR 伪劣 OR 三无) AND (口罩 OR 防护服) NOT 打击"),
            ("防护服紧缺", "(防护服 OR 护目镜 OR N95) AND (紧缺 OR 告急 OR 短缺 OR 不够)"),
            ("捐赠物资", '"捐赠 物资" OR (捐赠 NEAR/3 医院)'),
            ("消毒用品断货", "(84消毒液 OR 酒精 OR 消毒液) AND (买不到 OR 断货 OR 限购)"),
        ],
    ),
    "医疗救治": (
        "health",
        [
            ("床位紧张", "(床位 OR 病床) AND (不够 OR 紧张 OR 没有 OR 住不进)"),
            ("患者求助", "(求助 OR 求救 OR 救救) AND (发烧 OR 确诊 OR 疑似 OR 肺炎)"),
            ("检测排队", "(核酸 OR 试剂盒) NEAR/8 (排队 OR 检测不了 OR 做不了 OR 等待)"),
            ("发热门诊拥挤", '"发热 门诊" AND (排队 OR 拥挤 OR 人多)'),
            ("医护感染", "(医生 OR 护士 OR 医护) NEAR/6 (感染 OR 确诊 OR 殉职)"),
            (
                "hospitals overwhelmed",
                'lang:en AND (hospital* OR doctor*) AND (shortage OR overwhelmed OR "no beds")',
            ),
        ],
    ),
    "隔离与封控": (
        "lockdown",
        [
            ("封城滞留", "(封城 OR 封路 OR 封村) AND (回不去 OR 出不去 OR 滞留 OR 困在)"),
            ("居家隔离无人管", '"居家 隔离" AND (没人管 OR 买菜 OR 生活物资)'),
            ("小区封闭", "小区 NEAR/4 (封闭 OR 封锁 OR 管控) NOT 解除"),
            (
                "隔离点条件",
                "隔离 NEAR/5 (酒店 OR 宾馆 OR 隔离点) AND (条件 OR 环境 OR 卫生 OR 收费)",
            ),
            ("歧视湖北人", "(湖北人 OR 武汉人 OR 湖北籍) AND (歧视 OR 赶出 OR 拒绝 OR 不让)"),
            ("交通停运", "(公交 OR 地铁 OR 高铁 OR 航班) AND (停运 OR 停开 OR 取消)"),
        ],
    ),
    "生活保障": (
        "livelihood",
        [
            ("菜价上涨", "(菜价 OR 蔬菜 OR 猪肉) AND (涨价 OR 太贵 OR 翻倍)"),
            ("买菜难", "买菜 AND (买不到 OR 排队 OR 难买)"),
            ("停工没收入", "(停工 OR 没工作 OR 失业 OR 没收入) AND (房租 OR 房贷 OR 还款 OR 工资)"),
            ("复工推迟", "复工 AND (推迟 OR 延迟 OR 不能 OR 无法)"),
            ("独居老人", "(独居 OR 孤寡) NEAR/5 (老人 OR 老年人)"),
            ("快递外卖停送", "(快递 OR 外卖) AND (不送 OR 送不了 OR 停运 OR 停送)"),
        ],
    ),
    "学校与教育": (
        "education",
        [
            ("开学推迟", "开学 NEAR/3 (推迟 OR 延迟 OR 延期)"),
            ("网课困难", "(网课 OR 线上教学 OR 直播课) AND (卡顿 OR 没网 OR 没有电脑 OR 负担)"),
            ("学生返校", "学生 AND (返校 OR 返乡) -放假通知"),
            ("考试延期", "(中考 OR 高考 OR 考研) AND (推迟 OR 延期 OR 取消)"),
            ("幼儿园收费", "幼儿园 AND (退费 OR 收费 OR 学费)"),
            (
                "schools closed",
                "lang:en AND (school* OR universit*) AND (closed OR closure OR online)",
            ),
        ],
    ),
    "谣言与信息公开": (
        "information",
        [
            ("谣言", "(谣言 OR 造谣 OR 传谣) -官方"),
            ("瞒报", "(瞒报 OR 隐瞒 OR 漏报) AND (病例 OR 疫情 OR 数据)"),
            ("抢购双黄连", "双黄连 AND (抢购 OR 排队 OR 脱销)"),
            ("红十字会", "红十字会 AND (物资 OR 捐款 OR 分配)"),
            ("信息公开", '"信息 公开" OR (公开 NEAR/3 透明)'),
            ("野味交易", "(野味 OR 野生动物 OR 穿山甲 OR 蝙蝠) AND (吃 OR 交易 OR 市场)"),
        ],
    ),
    "城市环境": (
        "environment",
        [
            ("河阳区垃圾污水", "area:河阳区 AND (垃圾 OR 污水)"),
            ("松岭区噪音", "area:239902 AND (噪音 OR 扰民 OR 施工)"),
            ("垃圾无人清运", "垃圾 NEAR/4 (没人清 OR 堆积 OR 清运 OR 成堆)"),
            ("下水道堵塞", "(下水道 OR 污水) AND (堵 OR 漫 OR 冒)"),
            ("路灯不亮", "路灯 AND (不亮 OR 坏了 OR 太黑)"),
            ("噪音扰民", "(噪音 OR 噪声 OR 扰民) -静音"),
        ],
    ),
    "住房与公用事业": (
        "housing",
        [
            ("停电", "(停电 OR 断电) AND (小区 OR 家里 OR 又)"),
            ("燃气", "(燃气 OR 煤气 OR 天然气) AND (泄漏 OR 漏气 OR 味道 OR 停气)"),
            ("物业", "物业 AND (不作为 OR 乱收费 OR 不管 OR 投诉)"),
            ("电梯故障", "电梯 NEAR/5 (故障 OR 坏了 OR 困人 OR 停运)"),
            ("房租", "(房东 OR 房租) AND (减免 OR 涨 OR 催)"),
            ("执法冲突", "source:weibo2020 AND (城管 OR 执法) AND (暴力 OR 打人 OR 冲突)"),
        ],
    ),
}
# The demo's seeded concerns (civicpulse.demo.loader), with their rules as the demo saves them.
DEMO_CONCERNS = {
    "供水水质": (
        "water",
        [("自来水异常", "(自来水 OR 水质 OR 停水) AND (发黄 OR 异味 OR 浑浊 OR 有味 OR 变色)")],
    ),
    "供暖": ("heating", [("暖气不热", "(暖气 OR 供暖 OR 供热) AND (不热 OR 冰凉 OR 温度低)")]),
}
# What residents write when the water goes wrong; {c} is a community of the demo city.
COMPLAINTS = (
    "{c}又停水了，来水以后自来水发黄，烧开还有一股异味，孩子都不敢喝",
    "{c}的自来水浑浊发黄已经好几天了，物业说不清楚原因，打热线也没人管",
    "早上接的自来水发黄，{c}好几栋楼都这样，水质到底有没有检测过？",
    "{c}水质有问题！自来水有味，洗完澡皮肤发痒，请有关部门来看看",
    "刚下班回家，{c}的自来水又变色了，楼上楼下都在群里说",
)


def progress(what: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {what}", flush=True)


# ------------------------------------------------------------------------------ data


def weibo_rows(n: int, skip: int = 0) -> list[tuple[str, str, str]]:
    """(date, userid, text) of ``n`` Weibo rows with text, after the first ``skip`` such rows."""
    out: list[tuple[str, str, str]] = []
    seen = 0
    with gzip.open(WEIBO, "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if not (row["text"] or "").strip():
                continue
            seen += 1
            if seen <= skip:
                continue
            out.append((row["date"], row["userid"], row["text"]))
            if len(out) >= n:
                break
    return out


def raw_posts(rows, source: str, shift_days: int = 0, prefix: str = "w") -> list:
    """RawPosts dated at the start of their day in China (as the weibo2020 mapping dates them);
    a tenth carry coordinates in the demo city, as geotagged posts do."""
    from zoneinfo import ZoneInfo

    from civicpulse.opinion.records import RawPost

    china = ZoneInfo("Asia/Shanghai")
    rng = random.Random(shift_days)
    out = []
    for i, (day, user, text) in enumerate(rows):
        when = datetime.fromisoformat(day).replace(tzinfo=china) + timedelta(days=shift_days)
        located = rng.random() < 0.1
        out.append(
            RawPost(
                source=source,
                external_id=f"{prefix}{i}",
                text=text,
                created_at=when,
                author=user,
                reach=int(rng.lognormvariate(5, 2)),
                lon=rng.uniform(126.45, 126.85) if located else None,
                lat=rng.uniform(45.6, 45.95) if located else None,
            )
        )
    return out


# ------------------------------------------------------------------------------ the store


def cli(data_dir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "CIVICPULSE_DATA_DIR": str(data_dir)}
    env.pop("CIVICPULSE_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "civicpulse.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"civicpulse {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done


def setup_django(data_dir: Path) -> None:
    """A throwaway store made by ``civicpulse migrate``, then Django in this process on it."""
    os.environ["CIVICPULSE_DATA_DIR"] = str(data_dir)
    os.environ.pop("CIVICPULSE_DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "civicpulse.settings")
    cli(data_dir, "migrate")
    import django

    django.setup()


def seed_desk() -> dict:
    """The small demo city's areas (for the gazetteer and the locator), the default sensitive
    terms and thresholds, and 50 saved rules. What was stored, in numbers."""
    from civicpulse.core.areas import AreaRecord, save_tree
    from civicpulse.demo.generator import DemoCity
    from civicpulse.opinion import services as opinion
    from civicpulse.opinion.models import Rule, SensitiveTerm

    city = DemoCity(seed=DEMO_SEED, size="small")
    save_tree(
        AreaRecord(a.code, a.level, a.name_zh, a.name_en, a.parent_code, a.polygon, a.heated)
        for a in city.areas
    )
    opinion.seed_defaults()
    for name, (category, rules) in {**DEMO_CONCERNS, **CONCERNS}.items():
        opinion.add_concern(name, category=category, rules_=rules)
    return {
        "areas": len(city.areas),
        "rules": Rule.objects.filter(is_active=True).count(),
        "near": Rule.objects.filter(query__contains="NEAR/").count(),
        "fields": Rule.objects.filter(query__regex=r"(source|lang|area):").count(),
        "terms": SensitiveTerm.objects.count(),
        "communities": sorted(
            {a.name_zh for a in city.areas if a.level == "community"}, key=lambda s: (len(s), s)
        ),
    }


# ------------------------------------------------------------------------------ 1. scoring


def bench_scoring(desk: dict, profile: bool) -> tuple[list[tuple[str, str, str, str]], dict]:
    """``scorer().score`` of real Weibo posts on one core, beside jieba alone; then the whole
    ``posts.store`` of the same posts beside scoring alone."""
    import numpy as np

    from civicpulse.opinion import posts as lake_posts
    from civicpulse.opinion import services as opinion
    from civicpulse.opinion.scoring import scorer
    from civicpulse.text.tokenize import tokens

    progress("scoring: reading posts")
    rows = weibo_rows(SCORED)
    batch = raw_posts(rows, "weibo2020")
    texts = [p.text for p in batch]
    n = len(batch)
    mean = float(np.mean([len(t) for t in texts]))
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    threads = {k: v for k, v in os.environ.items() if k.endswith("_NUM_THREADS")}
    pinned = one_core()
    try:
        progress("scoring: warming up")
        tokens("暖气", "zh")  # jieba's dictionary
        scorer().score(batch[:500])  # the scorer, the sentiment model, the regexes
        progress("scoring: timing")
        scored = scorer().score(batch)
        matched = sum(1 for r in scored.rules if r)
        placed = sum(1 for a in scored.area_code if a)
        score_rate = rate(lambda: scorer().score(batch), n)
        jieba_rate = rate(lambda: [tokens(t, "zh") for t in texts], n)
        sc = scorer()
        kept, sc.rule_set = sc.rule_set, type(sc.rule_set)([])
        try:
            bare_rate = rate(lambda: sc.score(batch), n)
        finally:
            sc.rule_set = kept
        if profile:
            _profile(lambda: scorer().score(batch))
        progress("scoring: posts.store")
        store_times = []
        for k in range(3):
            source = opinion.ensure_source(f"weibo-bench-{k}")
            fresh = raw_posts(rows, source.name, shift_days=120 * k, prefix=f"s{k}-")
            started = time.perf_counter()
            stored = lake_posts.store(source, fresh, name="benchmark")
            store_times.append(time.perf_counter() - started)
        store_rate = n / min(store_times)
    finally:
        # the servers of the next benchmark run as a city runs them, on every core
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
        for var in [k for k in os.environ if k.endswith("_NUM_THREADS")]:
            if var not in threads:
                del os.environ[var]
    what = f"{n:,} Weibo posts ({mean:.0f} chars), {desk['rules']} saved rules"
    result = [
        (
            f"scoring (`scorer().score`: language, sentiment, place, rules, sensitive terms), "
            f"{what}, 1 core",
            f"{score_rate:,.0f} posts/s",
            f"jieba tokens alone {jieba_rate:,.0f} posts/s",
            f"{score_rate / jieba_rate:.2f}x",
        ),
        (
            "`posts.store` of the same posts (checks, dedup, near copies, scoring, Parquet), "
            "1 core",
            f"{store_rate:,.0f} posts/s",
            f"scoring alone {score_rate:,.0f} posts/s",
            f"{store_rate / score_rate:.2f}x",
        ),
    ]
    facts = {
        "pinned": pinned,
        "matched": matched,
        "placed": placed,
        "n": n,
        "bare_rate": bare_rate,
        "score_rate": score_rate,
        "near_copies": stored.near_duplicates,
        "accepted": stored.accepted,
    }
    return result, facts


def _profile(fn) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(fn)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


# ------------------------------------------------------------------------------ 2. latency


class Site:
    """``civicpulse serve`` (gunicorn, two workers) and ``civicpulse worker`` on one data dir,
    started as a city runs them; always stopped by :meth:`stop`."""

    def __init__(self, data_dir: Path):
        import socket

        self.data_dir = data_dir
        self.env = {**os.environ, "CIVICPULSE_DATA_DIR": str(data_dir)}
        self.env.pop("CIVICPULSE_DATABASE_URL", None)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.procs: list[subprocess.Popen] = []
        self.logs = {}

    def start(self, name: str, *args: str) -> None:
        log = open(self.data_dir / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.logs[name] = log
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "civicpulse.cli", *args],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )

    def serve(self) -> None:
        import requests

        self.start("server", "serve", "--bind", self.url.removeprefix("http://"))
        self.start("worker", "worker")
        deadline = time.monotonic() + 90
        while True:
            try:
                requests.get(self.url + "/healthz", timeout=2).raise_for_status()
                return
            except requests.RequestException:
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                    raise RuntimeError(f"the server did not start:\n{self.log('server')}") from None
                time.sleep(0.3)

    def log(self, name: str) -> str:
        return (self.data_dir / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self.logs.values():
            log.close()


def _push(url: str, token: str, items: list[dict]) -> dict:
    import requests

    answer = requests.post(
        url + PUSH,
        data=json.dumps({"posts": items}, ensure_ascii=False).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=120,
    )
    if answer.status_code != 202:
        raise RuntimeError(f"push answered {answer.status_code}: {answer.text[:500]}")
    return answer.json()


def _token(data_dir: Path, name: str) -> str:
    out = cli(data_dir, "sources", "add", name, "--kind", "push").stdout
    return out.strip().splitlines()[-1].strip()


class Background:
    """A partner pushing real Weibo posts, re-dated to now, every BACKGROUND_EVERY seconds: the
    stream a warning has to be found in. Round trips are kept as the baseline."""

    def __init__(self, url: str, token: str, texts: list[str]):
        self.url, self.token, self.texts = url, token, texts
        self.stop = threading.Event()
        self.round_trips: list[float] = []
        self.sent = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        n = 0
        try:
            while not self.stop.is_set():
                now = datetime.now(UTC)
                items = []
                for _ in range(BACKGROUND_POSTS):
                    text = self.texts[n % len(self.texts)]
                    ago = timedelta(seconds=random.Random(n).uniform(0, 300))
                    items.append(
                        {"id": f"bg{n}", "text": text, "created_at": (now - ago).isoformat()}
                    )
                    n += 1
                started = time.perf_counter()
                _push(self.url, self.token, items)
                self.round_trips.append(time.perf_counter() - started)
                self.sent += len(items)
                self.stop.wait(BACKGROUND_EVERY)
        except BaseException as exc:  # reported by the main thread
            self.error = exc


def _complaints(community: str, n: int, first: int, rng: random.Random) -> list[dict]:
    now = datetime.now(UTC)
    out = []
    for k in range(first, first + n):
        text = COMPLAINTS[k % len(COMPLAINTS)].format(c=community)
        out.append(
            {
                "id": f"{community}-{k}",
                "text": f"{text} #{k}",
                "created_at": (now - timedelta(seconds=rng.uniform(1, 1800))).isoformat(),
                "author": f"resident-{rng.randrange(10**6)}",
                "reach": int(rng.lognormvariate(5, 1.5)),
            }
        )
    return out


def _watch_done_after(moment: datetime) -> bool:
    from civicpulse.core.models import Job

    return Job.objects.filter(
        name="opinion.watch", state=Job.State.DONE, finished_at__gt=moment
    ).exists()


def _warning_of(rule_id: int):
    from civicpulse.opinion.models import Warning

    return Warning.objects.filter(event_key=f"rule:{rule_id}").first()


def bench_latency(data_dir: Path, desk: dict, trials: int) -> tuple[list, dict]:
    """Warnings on live processes: per trial a new rule, VOLUME_AT - 1 matching posts pushed
    (no warning yet, checked after a watch run has seen them), a random pause, then the post
    that crosses; the time until the warning exists in the store."""
    from django.utils import timezone

    from civicpulse.opinion import services as opinion
    from civicpulse.opinion.models import WarningPolicy
    from civicpulse.signals.warning import INDICATORS, Thresholds
    from civicpulse.text import rules as rule_language

    thresholds = Thresholds.default().to_dict()
    for name in INDICATORS:  # volume alone decides, so the crossing post is known exactly
        thresholds["indicators"][name]["weight"] = 0.0
    thresholds["indicators"]["volume"] = {
        "thresholds": [VOLUME_AT, 50, 150, 500],
        "weight": thresholds["points_needed"],
    }
    WarningPolicy.objects.update_or_create(category=CATEGORY, defaults={"thresholds": thresholds})
    partner = _token(data_dir, "water-partner")
    stream = _token(data_dir, "weibo-stream")
    texts = [t for _, _, t in weibo_rows(5_000, skip=SCORED)]
    rng = random.Random(4)
    site = Site(data_dir)
    background = None
    latencies, crossings, checks = [], [], []
    try:
        progress("latency: starting the server and the worker")
        site.serve()
        background = Background(site.url, stream, texts)
        background.thread.start()
        time.sleep(20)  # both server processes load their scorer; the worker's first jobs run
        for trial in range(trials):
            community = desk["communities"][-1 - trial]  # long names: no one else's substring
            concern = opinion.add_concern(
                f"{community}水质",
                category=CATEGORY,
                rules_=[
                    (
                        "自来水异常",
                        f'"{community}" AND (自来水 OR 水质) AND '
                        "(发黄 OR 异味 OR 浑浊 OR 有味 OR 变色)",
                    )
                ],
            )
            rule = concern.rules.get()
            query = rule_language.parse(rule.query)
            if not all(
                query.matches({"text": c.format(c=community)}) for c in COMPLAINTS
            ):  # else the count below would not be the rule's
                raise RuntimeError(f"a complaint does not match {rule.query}")
            below = _push(site.url, partner, _complaints(community, VOLUME_AT - 1, 0, rng))
            pushed = timezone.now()
            deadline = time.monotonic() + 180
            while not _watch_done_after(pushed):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no watch run within 180 s:\n{site.log('worker')}")
                time.sleep(0.25)
            checks.append(_warning_of(rule.pk) is None and below["accepted"] == VOLUME_AT - 1)
            time.sleep(rng.uniform(0, 15))  # the crossing post comes at any moment
            sent = time.time()
            started = time.perf_counter()
            crossing = _push(site.url, partner, _complaints(community, 1, VOLUME_AT - 1, rng))
            crossings.append(time.perf_counter() - started)
            answered = time.time()
            deadline = time.monotonic() + 300
            while (warning := _warning_of(rule.pk)) is None:
                if time.monotonic() > deadline or background.error is not None:
                    raise RuntimeError(
                        f"no warning for rule {rule.pk} within 300 s ({background.error}):\n"
                        f"{site.log('worker')}"
                    )
                time.sleep(0.2)
            seen = time.time()
            latencies.append(seen - answered)
            progress(
                f"latency: trial {trial + 1}: warning {warning.get_level_display()} "
                f"{seen - answered:.1f} s after the crossing push was answered "
                f"(the push took {answered - sent:.2f} s, {crossing['accepted']} accepted)"
            )
    finally:
        if background is not None:
            background.stop.set()
            background.thread.join(timeout=130)
        site.stop()
    if not all(checks):
        raise RuntimeError("a warning was raised before its threshold was crossed")
    runs = [
        float(s)
        for s in re.findall(
            r"job opinion\.watch \(\d+\) done in ([\d.]+)s",
            (data_dir / "worker.log").read_text(errors="replace"),
        )
    ]
    facts = {
        "trials": trials,
        "median": statistics.median(latencies),
        "max": max(latencies),
        "crossing_ms": statistics.median(crossings) * 1000,
        "background_ms": statistics.median(background.round_trips) * 1000,
        "background_sent": background.sent,
        "watch_runs": len(runs),
        "watch_median": statistics.median(runs) if runs else float("nan"),
        "watch_max": max(runs) if runs else float("nan"),
    }
    rows = [
        (
            f"warning latency on live processes (gunicorn + worker), from the answer to the push "
            f"that crosses a rule's threshold to the warning in the store; median of {trials} "
            f"(max {facts['max']:.1f} s)",
            f"{facts['median']:.1f} s",
            "the 60 s watch cycle",
            f"{facts['median'] / 60:.2f}x",
        ),
        (
            f"one `opinion.watch` run ({desk['rules'] + trials} rules; median of "
            f"{len(runs)}, max {facts['watch_max']:.1f} s)",
            f"{facts['watch_median']:.2f} s",
            f"the push's own round trip (1 post) {facts['crossing_ms']:.0f} ms",
            f"{facts['watch_median'] * 1000 / facts['crossing_ms']:.0f}x",
        ),
    ]
    return rows, facts


# ------------------------------------------------------------------------------ 3. hot issues


def build_lake(root: Path, n: int, progress_every: int = 200_000) -> dict:
    """``n`` posts over LAKE_DAYS days in the ``posts`` table and their issues in
    ``issue_posts``, appended in 20,000-post chunks in time order as ``posts.store`` appends
    them. Texts are real Weibo posts, cycled, with their real sentiment."""
    import numpy as np
    import pyarrow as pa

    from civicpulse.lake import LakeRegistry
    from civicpulse.opinion import issues
    from civicpulse.opinion.posts import SCHEMA, TABLE
    from civicpulse.text import sentiment

    rng = np.random.default_rng(2020)
    distinct = [t for _, _, t in weibo_rows(50_000)]
    polarity = sentiment.polarities(distinct, ["zh"] * len(distinct))
    texts = pa.array(distinct, pa.string())
    districts = np.array(["", "239901", "239902", "239903", "239904", "239905"])
    until = datetime.combine(date.today(), datetime.min.time(), UTC)
    since = until - timedelta(days=LAKE_DAYS)
    span = int((until - since).total_seconds() * 1e6)
    offsets = np.sort(rng.integers(0, span, n))
    created = np.datetime64(since.replace(tzinfo=None), "us") + offsets.astype("timedelta64[us]")
    lake = LakeRegistry(root)
    chunk = 20_000
    members = 0
    weights = 1.0 / np.arange(1, ISSUES + 1) ** 1.1  # a few hot issues, a long tail
    weights /= weights.sum()
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        m = stop - start
        district = districts[rng.integers(0, len(districts), m)]
        ids = np.arange(start, stop)
        which = rng.integers(0, len(distinct), m)
        keys = [f"weibo2020:p{i}" for i in ids]
        when = created[start:stop]
        days = np.datetime_as_string(when + np.timedelta64(8, "h"), unit="D")  # China's day
        copy = rng.random(m) < 1 / 3
        copy[0] = False
        duplicate_of = [keys[rng.integers(0, j)] if c and j else "" for j, c in enumerate(copy)]
        lake.append(
            TABLE,
            pa.table(
                {
                    "post_key": keys,
                    "source": ["weibo2020"] * m,
                    "external_id": [f"p{i}" for i in ids],
                    "author_hash": [f"{x:032x}" for x in rng.integers(0, 2**62, m)],
                    "text": texts.take(pa.array(which)),
                    "created_at": pa.array(when, pa.timestamp("us", tz="UTC")),
                    "url": [""] * m,
                    "reach": rng.lognormal(5, 2, m).astype("int64"),
                    "reposts": rng.geometric(0.5, m) - 1,
                    "lon": pa.nulls(m, pa.float64()),
                    "lat": pa.nulls(m, pa.float64()),
                    "place": [""] * m,
                    "lang": ["zh"] * m,
                    "sentiment": polarity[which],
                    "simhash": rng.integers(-(2**63), 2**63 - 1, m, dtype="int64"),
                    "content_hash": [f"{x:016x}" for x in rng.integers(0, 2**62, m)],
                    "duplicate_of": duplicate_of,
                    "area_code": district,
                    "district_code": district,
                    "areas": [""] * m,
                    "rules": [""] * m,
                    "sensitive": np.zeros(m),
                    "batch_id": np.full(m, start // chunk, dtype="int64"),
                    "day": days,
                },
                schema=SCHEMA,
            ),
            partition_by=["day"],
            description="Public posts, scored on the way in, by local day",
        )
        assigned = rng.random(m) < MEMBER_SHARE
        regrouped = assigned & (rng.random(m) < REGROUPED_SHARE)
        for mask, late in ((assigned, 0), (regrouped, 1)):
            k = int(mask.sum())
            if not k:
                continue
            at = when[mask] + np.timedelta64(10 + late * 300, "m")
            lake.append(
                issues.MEMBERSHIP,
                pa.table(
                    {
                        "post_key": np.array(keys, dtype=object)[mask],
                        "issue_id": rng.choice(ISSUES, k, p=weights).astype("int64") + 1,
                        "assigned_at": pa.array(at, pa.timestamp("us", tz="UTC")),
                        "day": days[mask],
                    },
                    schema=issues.MEMBERSHIP_SCHEMA,
                ),
                partition_by=["day"],
                description="Which hot issue each post belongs to (latest assignment wins)",
            )
            members += k if not late else 0
        if stop % progress_every == 0 or stop == n:
            progress(f"hot issues: {stop:,} posts written")
    meta = {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "posts": n,
        "members": members,
        "files": len(list((root / TABLE).rglob("part-*.parquet"))),
    }
    (root / "bench.json").write_text(json.dumps(meta))
    return meta


RAW_SQL = """
WITH latest AS (
    SELECT post_key, arg_max(issue_id, assigned_at) AS issue_id
    FROM read_parquet(?, hive_partitioning = true)
    GROUP BY post_key
), p AS (
    SELECT post_key, created_at, duplicate_of, reach, sentiment, district_code
    FROM read_parquet(?, hive_partitioning = true)
    WHERE created_at >= ? AND created_at < ?
)
SELECT issue_id,
       count(*) AS posts,
       count(*) FILTER (WHERE duplicate_of = '') AS voices,
       sum(reach)::BIGINT AS reach,
       avg(CASE WHEN sentiment < ? THEN 1.0 ELSE 0.0 END) AS negative_share,
       count(DISTINCT district_code) AS districts,
       min(created_at) AS first,
       max(created_at) AS last
FROM p JOIN latest USING (post_key)
GROUP BY issue_id
"""


def lake_child(kind: str, data_dir: Path, out: Path) -> None:
    """In a fresh process: the recompute by ``kind`` ("ibis": ``issues.issue_figures`` on the
    lake's Ibis connection; "sql": RAW_SQL in a plain DuckDB connection), best of 3; prints
    JSON with the time, the process's RSS before the runs and its peak RSS during them (Linux:
    the peak is reset through /proc/self/clear_refs first, so what the imports took before
    does not hide it). Both kinds load the same modules first."""
    os.environ["CIVICPULSE_DATA_DIR"] = str(data_dir)
    os.environ.pop("CIVICPULSE_DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "civicpulse.settings")
    import django

    django.setup()
    import duckdb
    import pyarrow.parquet as pq

    from civicpulse.core import analytics
    from civicpulse.opinion import issues
    from civicpulse.opinion.posts import TABLE
    from civicpulse.text.sentiment import NEGATIVE

    meta = json.loads((data_dir / "lake" / "bench.json").read_text())
    since, until = (datetime.fromisoformat(meta[k]) for k in ("since", "until"))
    registry = analytics.registry()
    if kind == "ibis":
        con = analytics.connection()
        posts_t = registry.table(con, TABLE)
        members = registry.table(con, issues.MEMBERSHIP)

        def run():
            return issues.issue_figures(posts_t, members, since, until).to_pyarrow()
    else:
        con = duckdb.connect()
        globs = [
            str(registry.get(t).path) + "/**/part-*.parquet" for t in (issues.MEMBERSHIP, TABLE)
        ]

        def run():
            return con.execute(RAW_SQL, [*globs, since, until, NEGATIVE]).to_arrow_table()

    before = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
    result = None

    def keep():
        nonlocal result
        result = run()

    seconds = best(keep, repeat=3)
    peak = _status_kb("VmHWM")
    pq.write_table(result.sort_by("issue_id"), out)
    print(json.dumps({"seconds": seconds, "before_kb": before, "peak_kb": peak}))


def _status_kb(field: str) -> int:
    """VmRSS (resident now) or VmHWM (its peak) of this process. Not ``ru_maxrss``: that also
    keeps the size of the parent the child was forked from."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _run_lake_child(kind: str, data_dir: Path, out: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.opinion", "--lake-child", kind, str(data_dir), str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} recompute failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def same_figures(a, b) -> int:
    """Raise unless the two results hold the same figures; the number of issues."""
    import numpy as np

    if a.num_rows != b.num_rows:
        raise AssertionError(f"{a.num_rows} issues against {b.num_rows}")
    for column in ("issue_id", "posts", "voices", "reach", "districts", "first", "last"):
        x, y = a.column(column).to_pylist(), b.column(column).to_pylist()
        if x != y:
            bad = next(i for i, (p, q) in enumerate(zip(x, y, strict=True)) if p != q)
            raise AssertionError(f"{column} differs at row {bad}: {x[bad]!r} against {y[bad]!r}")
    x = a.column("negative_share").to_numpy()
    y = b.column("negative_share").to_numpy()
    if not np.allclose(x, y, rtol=1e-12, atol=0):
        raise AssertionError(f"negative_share differs by up to {np.max(np.abs(x - y))}")
    return a.num_rows


def bench_hot_issues(n: int) -> tuple[list, dict]:
    import pyarrow.parquet as pq

    work = Path(tempfile.mkdtemp(prefix="civicpulse-bench-lake-"))
    try:
        progress(f"hot issues: writing {n:,} posts")
        started = time.perf_counter()
        meta = build_lake(work / "lake", n)
        meta["write_s"] = time.perf_counter() - started
        progress("hot issues: recompute, Ibis")
        ibis_run = _run_lake_child("ibis", work, work / "ibis.parquet")
        progress("hot issues: recompute, raw DuckDB SQL")
        sql_run = _run_lake_child("sql", work, work / "sql.parquet")
        issues_n = same_figures(
            pq.read_table(work / "ibis.parquet"), pq.read_table(work / "sql.parquet")
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mb = 1024
    grew = {
        k: max(r["peak_kb"] - r["before_kb"], 1) for k, r in (("ibis", ibis_run), ("sql", sql_run))
    }
    rows = [
        (
            f"hot-issue recompute (`issues.issue_figures`, Ibis on DuckDB) over {n:,} posts, "
            f"{meta['members']:,} assigned to {issues_n} issues, {LAKE_DAYS} days",
            f"{ibis_run['seconds']:.2f} s",
            f"raw DuckDB SQL {sql_run['seconds']:.2f} s",
            f"{ibis_run['seconds'] / sql_run['seconds']:.2f}x",
        ),
        (
            "memory of the same recompute: the process's peak RSS during the runs, above its "
            "RSS before them",
            f"+{grew['ibis'] / mb:,.0f} MB (peak {ibis_run['peak_kb'] / mb:,.0f} MB)",
            f"raw DuckDB SQL +{grew['sql'] / mb:,.0f} MB (peak {sql_run['peak_kb'] / mb:,.0f} MB)",
            f"{grew['ibis'] / grew['sql']:.2f}x",
        ),
    ]
    meta.update(ibis=ibis_run, sql=sql_run, issues=issues_n)
    return rows, meta


# ------------------------------------------------------------------------------ 4. import


def _figures(summary: str) -> dict[str, int]:
    """The numbers of ``ingest.summary``'s lines: read, accepted, near copies, ..."""
    found = re.findall(
        r"^\s*(read|accepted|near copies|duplicates|quarantined)\s+([\d,]+)", summary, re.M
    )
    return {name: int(value.replace(",", "")) for name, value in found}


def bench_weibo_import(root: Path) -> list[tuple[str, str, str, str]]:
    """The whole Weibo file through ``civicpulse import posts``, twice, in a fresh data dir
    (no areas, no rules: a city's first day)."""
    data_dir = root / "import"
    data_dir.mkdir()
    cli(data_dir, "migrate")
    args = ("import", "posts", str(WEIBO), "--mapping", "weibo2020")
    progress("import: the whole Weibo file")
    started = time.perf_counter()
    first = _figures(cli(data_dir, *args, timeout=7200).stdout)
    first_s = time.perf_counter() - started
    progress("import: again")
    started = time.perf_counter()
    again = _figures(cli(data_dir, *args, timeout=7200).stdout)
    again_s = time.perf_counter() - started
    started = time.perf_counter()
    with gzip.open(WEIBO, "rt", encoding="utf-8", newline="") as fh:
        read = sum(1 for _ in csv.DictReader(fh))
    csv_s = time.perf_counter() - started
    return [
        (
            f"`civicpulse import posts` of the whole Weibo file, fresh data dir ({read:,} rows: "
            f"{first['accepted']:,} stored, {first['near copies']:,} of them near copies, "
            f"{first['duplicates']:,} repeated rows, {first['quarantined']:,} quarantined)",
            f"{first_s:.0f} s ({read / first_s:,.0f} rows/s)",
            f"reading the file with csv alone {csv_s:.1f} s",
            f"{first_s / csv_s:.0f}x",
        ),
        (
            f"the same import again ({again['duplicates']:,} skipped as stored)",
            f"{again_s:.0f} s",
            f"first import {first_s:.0f} s",
            f"{again_s / first_s:.2f}x",
        ),
    ]


# ------------------------------------------------------------------------------ the section


def section(
    rows, score: dict, latency: dict, lake: dict, desk: dict, load: str, imported: bool
) -> list[str]:
    lines = [
        f"Measured {date.today().isoformat()} on {machine()} by `python -m benchmarks.opinion`"
        f" ({load}). Each figure stands beside a baseline measured in the same run; the "
        "machine is shared, so the latency trials in particular move with what else runs.",
        "",
        *table(rows),
        "",
        f"**Scoring.** The first {score['n']:,} Weibo posts with text in "
        "`covid19_weibo_unlabeled_daily_2020.csv.gz`, as `RawPost`s (a tenth given coordinates "
        "in the demo city), scored by the real pipeline `scorer().score(posts)` in one call, "
        f"best of 3, with the process {score['pinned']} and the maths libraries on one thread; "
        "jieba's dictionary, the sentiment model and the scorer are loaded before the timing. "
        f"The store holds the small demo city's {desk['areas']:,} areas (gazetteer and "
        f"locator), {desk['terms']} sensitive terms and {desk['rules']} saved rules: the demo's "
        "two seeded concerns and 48 written for this benchmark in 8 concerns (AND/OR/NOT, "
        f"phrases, {desk['near']} with NEAR/n, {desk['fields']} with source:/lang:/area: "
        f"filters); {score['matched']:,} of the posts match at least one rule and "
        f"{score['placed']:,} are placed. Without the saved rules the same scoring runs at "
        f"{score['bare_rate']:,.0f} posts/s. The baseline is jieba's precise mode alone "
        '(`tokenize.tokens(t, "zh")`) over the same posts. `posts.store` is the whole intake '
        "of the same posts into an empty stretch of the lake (best of 3, each under its own "
        "source and dates): validation, the look-up of stored ids, scoring, near copies "
        f"({score['near_copies']:,} found) and the Parquet append.",
        "",
        f"**Warning latency.** A throwaway data dir made by `civicpulse migrate`; two push "
        "sources made by `civicpulse sources add --kind push`; `civicpulse serve` (gunicorn, "
        "two workers) and `civicpulse worker` (every job, as a city runs it) started as "
        f"processes. One partner pushes {BACKGROUND_POSTS} real Weibo posts, re-dated to now, "
        f"every {BACKGROUND_EVERY:g} s through the run ({latency['background_sent']:,} posts, "
        f"median round trip {latency['background_ms']:.0f} ms). Each of {latency['trials']} "
        "trials saves a new rule (a community's water complaints) in a category whose "
        f"thresholds let volume alone decide (level IV at {VOLUME_AT} posts in 24 h), pushes "
        f"{VOLUME_AT - 1} matching posts, waits for a watch run to have seen them and checks "
        "that no warning exists, pauses 0-15 s at random, then pushes the post that crosses. "
        "The latency runs from the answer to that push until the benchmark, polling the store "
        "every 0.2 s, finds the rule's `Warning`. The push API queues `opinion.watch` after "
        "every stored batch, at most once a minute and otherwise for the next minute "
        "(`api.queue_watch`), beside its periodic run every 60 s; one watch run's time is "
        "read from the worker's log. A post stored while a watch run is already reading the "
        "lake waits for the run the next push queues, or, when no push follows, for the next "
        "minute's: in a quiet stream the bound is the 60 s cycle plus one run, which these "
        "trials, all inside a steady stream, do not reach.",
        "",
        f"**Hot-issue recompute.** {lake['posts']:,} posts written straight to the lake table "
        f"`posts` (schema `posts.SCHEMA`) over {LAKE_DAYS} days, appended in 20,000-post chunks "
        f"by day as `posts.store` appends them ({lake['files']:,} Parquet files, written in "
        f"{lake['write_s']:.0f} s): real Weibo texts cycled (50,000 distinct, with their real "
        "sentiment), random reach, a third marked as near copies, districts at random. "
        f"`issue_posts` assigns {MEMBER_SHARE:.0%} of them to {ISSUES} issues (a Zipf-like "
        f"spread) and moves {REGROUPED_SHARE:.0%} of those to another issue later, so the latest "
        "assignment has to win. The figure is `issues.issue_figures(...).to_pyarrow()` over the "
        "whole 30 days through the lake's own Ibis connection; the baseline the same "
        "aggregation written by hand in DuckDB SQL over `read_parquet`. Each runs in a fresh "
        "process (best of 3 there); the two answers are compared issue by issue (counts, "
        "reach, areas and times exactly, the negative share to 1e-12) and the run fails if "
        "they differ. Memory: each child loads the same modules (Django, Ibis, DuckDB: "
        f"{lake['ibis']['before_kb'] / 1024:,.0f} MB and {lake['sql']['before_kb'] / 1024:,.0f} "
        "MB resident), resets its peak-RSS mark (`/proc/self/clear_refs`), runs the recompute "
        "three times and reads its peak RSS (`VmHWM` in `/proc/self/status`; not `ru_maxrss`, "
        "which in a child also keeps the size of the parent it was forked from); the table "
        "gives that peak and how far it rose above the RSS before the runs.",
    ]
    if imported:
        lines += [
            "",
            "**Weibo import.** The whole file through `civicpulse import posts --mapping "
            "weibo2020` in a data dir of its own (no areas, no rules: a city's first day), then "
            "the same command again; the baseline is reading the gzipped CSV with the `csv` "
            "module alone.",
        ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="warning latency trials")
    parser.add_argument("--lake-posts", type=int, default=1_000_000)
    parser.add_argument("--weibo-import", action="store_true", help="also the whole Weibo file")
    parser.add_argument("--profile", action="store_true", help="print where scoring spends time")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    parser.add_argument("--lake-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lake_child:
        kind, data_dir, out = args.lake_child
        lake_child(kind, Path(data_dir), Path(out))
        return
    load = f"1-minute load average {os.getloadavg()[0]:.1f} before it started"
    root = Path(tempfile.mkdtemp(prefix="civicpulse-bench-opinion-"))
    try:
        data_dir = root / "desk"
        data_dir.mkdir()
        setup_django(data_dir)
        progress("seeding the desk")
        desk = seed_desk()
        score_rows, score = bench_scoring(desk, args.profile)
        latency_rows, latency = bench_latency(data_dir, desk, args.trials)
        lake_rows, lake = bench_hot_issues(args.lake_posts)
        rows = score_rows + latency_rows + lake_rows
        if args.weibo_import:
            rows += bench_weibo_import(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load += f", {os.getloadavg()[0]:.1f} when it ended"
    lines = section(rows, score, latency, lake, desk, load, args.weibo_import)
    print("\n".join(lines))
    if not args.no_write:
        write_section(HEADING, lines)


if __name__ == "__main__":
    main()

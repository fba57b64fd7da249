"""The languages qosmon's pages and messages are written in.

The people who read the pages and alerts often sit in China while the
viewers are abroad, so every user-facing text exists in English and
Simplified Chinese. Texts are keyed by their English wording (gettext's
habit): the English page needs no catalogue and a missing translation falls
back to English rather than to a key nobody can read. A test checks that
every text the templates ask for has its Chinese.
"""

from __future__ import annotations

from collections.abc import Callable

from qosmon.errors import ConfigError
from qosmon.model import Cause
from qosmon.report.vocabulary import CAUSE_TEXT

LANGUAGES = ("en", "zh")
DEFAULT_LANGUAGE = "en"
HTML_LANG = {"en": "en", "zh": "zh-Hans"}


class LanguageError(ConfigError):
    """A language setting names a language qosmon does not write."""


ZH: dict[str, str] = {
    # history page
    "Show history": "直播历史",
    "History": "历史",
    "shows": "场直播",
    "regions": "个地区",
    "from": "自",
    "to": "至",
    "Viewer experience score per region": "各地区观众体验评分",
    "score": "评分",
    "Score per region over shows": "各地区每场直播的评分",
    "Each point is one show; open it for that show's report.": "每个点代表一场直播，点击可打开该场报告。",
    "Where it keeps failing: region, ISP, edge node": "反复出问题的位置：地区、运营商、边缘节点",
    "When it keeps failing: local weekday and time slot": "反复出问题的时间：当地星期与时段",
    "Causes over time": "各类原因随时间的变化",
    "incident minutes per show, by cause": "每场直播按原因统计的故障分钟数",
    "Incidents of the period": "本期间的故障",
    "SKUs that sold out or went stale in more than one show": "在多场直播中售罄或数据过期的商品",
    "Before and after changes": "变更前后对比",
    "region": "地区",
    "ISP": "运营商",
    "edge node": "边缘节点",
    "incidents": "故障数",
    "incident minutes": "故障分钟",
    "viewers lost": "流失观众",
    "orders lost": "损失订单",
    "shows with it": "涉及场次",
    "causes": "原因",
    "time zone": "时区",
    "slot (local)": "时段（当地）",
    "shows aired": "播出场次",
    "shows failing": "出问题场次",
    "show": "直播",
    "start (UTC)": "开始（UTC）",
    "start (local)": "开始（当地）",
    "minutes": "分钟",
    "cause": "原因",
    "where": "位置",
    "summary": "摘要",
    "SKU": "商品",
    "warehouse": "仓库",
    "what happened": "情况",
    "refill suggested": "建议补货",
    "change": "变更",
    "before": "之前",
    "after": "之后",
    "verdict": "结论",
    "mean score": "平均评分",
    "incident min / show": "每场故障分钟",
    "better": "变好",
    "worse": "变差",
    "no clear change": "无明显变化",
    "too few shows to tell": "场次太少，无法判断",
    "whole region": "整个地区",
    "whole show": "整场直播",
    "Nothing recurred in this period.": "本期间没有重复出现的问题。",
    "No stored shows in this period.": "本期间没有已存储的直播。",
    "No changes given (--change DATE=label).": "未指定变更（--change 日期=说明）。",
    "sold out": "售罄",
    "red: about to sell out": "红色预警：即将售罄",
    "stale data": "数据过期",
    "sync fault": "同步故障",
    "latest": "最近一场",
    "All show reports": "全部直播报告",
    "Back to history": "返回历史",
    "score = 100 x availability x weighted mean of smoothness (0.45), network (0.25), startup (0.15) and chat (0.15); see the report for the parts.":
        "评分 = 100 × 可用性 × 流畅度(0.45)、网络(0.25)、起播(0.15)、互动(0.15)的加权平均；各部分见单场报告。",
    "unknown": "未知",
    "units": "件",
    "Mon": "周一", "Tue": "周二", "Wed": "周三", "Thu": "周四", "Fri": "周五",
    "Sat": "周六", "Sun": "周日",
    # causes
    "node failure": "节点故障",
    "bandwidth": "带宽不足",
    "packet loss": "丢包",
    "high latency": "高延迟",
    "chat channel": "互动通道故障",
    "stock-out": "缺货",
    "low stock": "库存偏低",
    "stale inventory": "库存数据过期",
    "not the network": "非网络原因",
    "probe-local": "仅单个探针",
}


_CATALOGUES = {"en": {}, "zh": ZH}


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise LanguageError(
            f"unknown language {lang!r}: qosmon writes {', '.join(LANGUAGES)}"
        )
    return lang


def translator(lang: str) -> Callable[[str], str]:
    """``t(english_text) -> text in lang`` (English when not translated)."""
    table = _CATALOGUES[check_language(lang)]
    return lambda text: table.get(text, text)


def cause_name(cause: Cause | str, lang: str = DEFAULT_LANGUAGE) -> str:
    """The cause's short label (the report's vocabulary) in ``lang``."""
    try:
        english = CAUSE_TEXT[Cause(cause)][0]
    except ValueError:
        english = str(cause)
    return translator(lang)(english)

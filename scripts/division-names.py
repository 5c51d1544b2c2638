#!/usr/bin/env python3
"""Writes the `name_en` column of data/cn-adcodes.csv: each division's
English name in Hanyu Pinyin (GB/T 16159 spelling, the form China's place
names take in English), from pypinyin's dictionary of phrases and
readings (pypinyin 0.55, MIT licence, https://pypi.org/project/pypinyin/).

    pip install pypinyin==0.55.0 && python3 scripts/division-names.py

The generic part of a name becomes English (区 District, 县 County,
自治县 Autonomous County, 旗 Banner, ...); a province, a prefecture-level
city and a county-level city go by their proper name alone (江苏省
Jiangsu, 南京市 Nanjing, 昆山市 Kunshan), as in English usage. Syllables
that would run together take an apostrophe (淮安 Huai'an). READINGS fixes
the few names whose place-name reading differs from the dictionary's.
Run it again after replacing the division list; the output is stable.
"""
import csv
import io
import pathlib
import re

from pypinyin import lazy_pinyin

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "cn-adcodes.csv"

# Place-name readings that differ from pypinyin's choice (checked against
# the divisions' official romanisation).
READINGS = {
    # English exonyms in standing use.
    "香港": "Hong Kong",
    "澳门": "Macao",
    "内蒙古": "Inner Mongolia",
    "呼和浩特": "Hohhot",
    "乌鲁木齐": "Urumqi",
    "拉萨": "Lhasa",
    "六合": "Luhe",
    "大埔": "Dapu",
    "单": "Shan",
    "长治": "Changzhi",
    "乐亭": "Laoting",
    "蔚": "Yu",
}
# 都 in a place name is always read du (成都, 盐都, 郫都, 都匀).
CHAR_READINGS = {"都": "du", "长": "chang"}

ETHNIC = (
    "蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 "
    "高山 拉祜 水 东乡 纳西 景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 "
    "普米 塔吉克 怒 乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 京 塔塔尔 独龙 鄂伦春 赫哲 门巴 "
    "珞巴 基诺"
).split()
ETHNIC_RE = "(?:" + "|".join(sorted(ETHNIC, key=len, reverse=True)) + ")族"


def pinyin(stem: str) -> str:
    if stem in READINGS:
        return READINGS[stem]
    syllables = lazy_pinyin(stem)
    # lazy_pinyin returns one syllable per character for Chinese text.
    if len(syllables) == len(stem):
        syllables = [CHAR_READINGS.get(c, s) for c, s in zip(stem, syllables)]
    out = ""
    for s in syllables:
        if out and s[:1] in "aoe":
            out += "'"
        out += s
    return out[:1].upper() + out[1:]


def english(adcode: str, name: str) -> str:
    if name in ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"):
        return ""
    level_city = adcode[4:] == "00000000" and adcode[2:4] != "00"
    level_province = adcode[2:] == "0000000000"
    m = re.fullmatch(r"(.+?)(?:" + ETHNIC_RE + r")*自治(区|州|县|旗)", name)
    if m:
        stem, kind = m.group(1), m.group(2)
        if kind == "区":
            return pinyin(stem)
        return pinyin(stem) + {"州": " Prefecture", "县": " Autonomous County",
                               "旗": " Autonomous Banner"}[kind]
    for suffix, word in (("特别行政区", ""), ("地区", " Prefecture"), ("林区", " Forestry District"),
                         ("特区", " Special District"), ("新区", " New Area"), ("省", ""),
                         ("盟", " League"), ("旗", " Banner"), ("区", " District"),
                         ("县", " County"), ("市", "")):
        if name.endswith(suffix) and len(name) > len(suffix):
            stem = name[: -len(suffix)]
            if suffix in ("区", "县") and (level_city or level_province):
                word = ""
            return pinyin(stem) + word
    return pinyin(name)


def main() -> None:
    rows = list(csv.reader(io.StringIO(DATA.read_text(encoding="utf-8"))))
    header = rows[0][:4]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header + ["name_en"])
    for r in rows[1:]:
        r = r[:4]
        w.writerow(r + [english(r[0], r[1])])
    DATA.write_text(out.getvalue(), encoding="utf-8")


if __name__ == "__main__":
    main()

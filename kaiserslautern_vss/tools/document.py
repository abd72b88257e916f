"""A tiny document model rendered as Markdown and as HTML, escaping every text it is given.

Reports built from configuration (the configuration reference, the data-protection
report) contain values an operator typed: they must not break a table or inject markup.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

# '_' is left alone: inside words (most parameter names) CommonMark never reads it as emphasis.
# Brackets only make a link or image when ']' is followed by '(': that pair is broken instead.
_MARKDOWN_SPECIAL = re.compile(r'([\\`*{}<>#|])')


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = Heading | Paragraph | Bullets | Table


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    return Table(tuple(header), tuple(tuple(str(cell) for cell in row) for row in rows))


def escape_markdown(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r'\\\1', str(text)).replace('](', ']\\(').replace('\n', ' ')


def to_markdown(blocks: Sequence[Block]) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f'{"#" * block.level} {escape_markdown(block.text)}')
        elif isinstance(block, Paragraph):
            parts.append(escape_markdown(block.text))
        elif isinstance(block, Bullets):
            parts.append('\n'.join(f'- {escape_markdown(item)}' for item in block.items))
        else:
            lines = ['| ' + ' | '.join(escape_markdown(h) for h in block.header) + ' |',
                     '|' + '---|' * len(block.header)]
            lines += ['| ' + ' | '.join(escape_markdown(c) for c in row) + ' |' for row in block.rows]
            parts.append('\n'.join(lines))
    return '\n\n'.join(parts) + '\n'


def to_html(blocks: Sequence[Block], title: str, lang: str = 'de') -> str:
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f'<h{block.level}>{html.escape(block.text)}</h{block.level}>')
        elif isinstance(block, Paragraph):
            body.append(f'<p>{html.escape(block.text)}</p>')
        elif isinstance(block, Bullets):
            body.append('<ul>' + ''.join(f'<li>{html.escape(i)}</li>' for i in block.items) + '</ul>')
        else:
            head = ''.join(f'<th>{html.escape(h)}</th>' for h in block.header)
            rows = ''.join('<tr>' + ''.join(f'<td>{html.escape(c)}</td>' for c in row) + '</tr>'
                           for row in block.rows)
            body.append(f'<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>')
    style = ('body{font-family:sans-serif;max-width:60em;margin:2em auto}'
             'table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .5em;text-align:left}')
    return (f'<!DOCTYPE html>\n<html lang="{html.escape(lang)}"><head><meta charset="utf-8">'
            f'<title>{html.escape(title)}</title><style>{style}</style></head><body>\n'
            + '\n'.join(body) + '\n</body></html>\n')

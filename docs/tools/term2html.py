#!/usr/bin/env python3
"""Render a terminal capture (from `script`) to HTML as the screen showed it at the end.

Used to make docs/live-view.png from a real run (README, "The live view"):

    script -qfec "waymark run itms-7.6/hierarchy --yes" /dev/null > capture.txt
    head -c BYTES capture.txt | python3 docs/tools/term2html.py > live.html   # BYTES: a frame's end
    chromium --headless --screenshot=docs/live-view.png --window-size=1180,500 live.html

Understands what waymark and indicatif emit: text, CR, LF, erase line (ESC[2K), cursor
up/down (ESC[nA / ESC[nB) and SGR colours; anything else is dropped.
"""
import html
import re
import sys

COLORS = {"31": "#e06c75", "32": "#98c379", "33": "#e5c07b", "35": "#c678dd",
          "36": "#56b6c2", "37": "#abb2bf"}

def render(stream, width=120):
    lines = [[]]
    row, col, style = 0, 0, {}
    for tok in re.findall(r"\x1b\[[0-9;]*[A-Za-z]|\r|\n|[^\x1b\r\n]", stream):
        if tok == "\r":
            col = 0
        elif tok == "\n":
            row += 1
            col = 0
        elif tok.startswith("\x1b["):
            arg, cmd = tok[2:-1], tok[-1]
            n = int(arg) if arg.isdigit() else 1
            if cmd == "A":
                row = max(0, row - n)
            elif cmd == "B":
                row += n
            elif cmd == "K":
                while len(lines) <= row:
                    lines.append([])
                lines[row] = lines[row][:col] if arg in ("", "0") else []
            elif cmd == "m":
                for code in (arg or "0").split(";"):
                    if code == "0":
                        style = {}
                    elif code in COLORS:
                        style = dict(style, color=COLORS[code])
                    elif code == "1":
                        style = dict(style, bold=True)
                    elif code == "2":
                        style = dict(style, dim=True)
            continue
        else:
            if col >= width:
                row += 1
                col = 0
            while len(lines) <= row:
                lines.append([])
            line = lines[row]
            while len(line) < col:
                line.append((" ", {}))
            if col < len(line):
                line[col] = (tok, style)
            else:
                line.append((tok, style))
            col += 1
        while len(lines) <= row:
            lines.append([])
    out = []
    for line in lines:
        spans = []
        for ch, st in line:
            css = []
            if "color" in st:
                css.append("color:" + st["color"])
            if st.get("bold"):
                css.append("font-weight:bold")
            if st.get("dim"):
                css.append("opacity:.6")
            c = html.escape(ch)
            spans.append('<span style="%s">%s</span>' % (";".join(css), c) if css else c)
        out.append("".join(spans).rstrip())
    while out and not out[-1]:
        out.pop()
    return out

def main():
    screen = render(sys.stdin.read())[-24:]
    print('<!DOCTYPE html><html><head><meta charset="utf-8"><style>'
          'body{margin:0;background:#282c34}pre{margin:0;padding:12px;color:#dcdfe4;'
          'font:14px/1.35 "DejaVu Sans Mono",monospace}</style></head><body><pre>')
    print("\n".join(screen))
    print("</pre></body></html>")

main()

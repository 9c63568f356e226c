/**
 * Where the event labels of a chart go. Labels sit in a band above the plot, one row per
 * 14 px, so they never cover data; a label goes in the first row where it clears every label
 * already there, so simultaneous or nearby events stack instead of printing over each other.
 * A label that would run past the right edge ends at its mark instead of starting there.
 */
export interface EventLabel {
  /** x of the event's mark, in the chart's units. */
  readonly x: number;
  readonly text: string;
}

export interface PlacedLabel {
  readonly x: number;
  readonly text: string;
  /** Where the text starts and ends, in the chart's units. */
  readonly left: number;
  readonly right: number;
  readonly anchor: 'start' | 'end';
  readonly row: number;
}

/** Width of a label at the report's 12-unit label font; generous, since overlap is worse than a gap. */
export function labelWidth(text: string, charWidth = 7): number {
  return text.length * charWidth + 6;
}

export function layoutLabels(labels: readonly EventLabel[], rightEdge: number, gap = 6, width: (text: string) => number = labelWidth): PlacedLabel[] {
  const rowEnds: number[] = [];
  return [...labels]
    .sort((a, b) => a.x - b.x)
    .map((l) => {
      const w = width(l.text);
      const fitsRight = l.x + 3 + w <= rightEdge;
      const left = fitsRight ? l.x + 3 : l.x - 3 - w;
      const right = left + w;
      let row = rowEnds.findIndex((end) => end + gap <= left);
      if (row === -1) row = rowEnds.push(right) - 1;
      else rowEnds[row] = right;
      return { x: l.x, text: l.text, left, right, anchor: fitsRight ? 'start' : 'end', row };
    });
}

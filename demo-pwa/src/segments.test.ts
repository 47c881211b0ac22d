import { describe, expect, it } from 'vitest';
import { speechSegments } from './segments.ts';

const frames = (pattern: string) => [...pattern].map((c) => (c === '#' ? 0.9 : c === '~' ? 0.4 : 0.05));

describe('speechSegments', () => {
  it('finds a segment where speech is and none in silence', () => {
    expect(speechSegments(frames('..........'), { frameSeconds: 0.1 })).toEqual([]);
    expect(speechSegments(frames('...#####........'), { frameSeconds: 0.1, endFrames: 3 })).toEqual([
      { start: 0.30000000000000004, end: 0.8 },
    ]);
  });

  it('bridges short pauses and in-between probabilities', () => {
    const segments = speechSegments(frames('..###..~###.......'), { frameSeconds: 0.1, endFrames: 3 });
    expect(segments).toHaveLength(1);
    expect(segments[0]!.end).toBeCloseTo(1.1, 6);
  });

  it('drops clicks shorter than the minimum', () => {
    expect(speechSegments(frames('...#.......'), { frameSeconds: 0.032, endFrames: 3 })).toEqual([]);
  });

  it('closes a segment that runs to the end of the clip', () => {
    expect(speechSegments(frames('..######'), { frameSeconds: 0.1 })).toEqual([{ start: 0.2, end: 0.8 }]);
  });
});

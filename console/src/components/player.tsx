import { duration } from '../format';

const speeds = [1, 2, 5, 10, 50];

/**
 * A replay's controls: play or pause, a step to the previous or next event, the speed, the position (in microseconds of
 * the session's own clock, up to `end`), the W3C trace to narrow the timeline to (when its requests carry any), and
 * where it is.
 */
export function Player({
  playing,
  at,
  end,
  speed,
  trace,
  traces,
  shown,
  total,
  onPlay,
  onStep,
  onSpeed,
  onPosition,
  onTrace,
}: {
  playing: boolean;
  at: number;
  end: number;
  speed: number;
  trace: string;
  traces: string[];
  /** How many events the position (and the trace) shows, of how many. */
  shown: number;
  total: number;
  onPlay: () => void;
  onStep: (dir: 1 | -1) => void;
  onSpeed: (speed: number) => void;
  onPosition: (at: number) => void;
  onTrace: (trace: string) => void;
}) {
  return (
    <div class="player" role="group" aria-label="Replay controls">
      <button type="button" class="primary" onClick={onPlay} aria-pressed={playing}>
        {playing ? 'Pause' : at >= end ? 'Replay from start' : 'Play'}
      </button>
      <button type="button" onClick={() => onStep(-1)} aria-label="Previous event">
        ◀
      </button>
      <button type="button" onClick={() => onStep(1)} aria-label="Next event">
        ▶
      </button>
      <label>
        Speed
        <select value={String(speed)} onChange={(e) => onSpeed(Number((e.currentTarget as HTMLSelectElement).value))}>
          {speeds.map((s) => (
            <option key={s} value={String(s)}>
              {s}×
            </option>
          ))}
        </select>
      </label>
      <label class="seek">
        Position
        <input
          type="range"
          min={0}
          max={Math.max(end, 1)}
          step={1}
          value={at}
          aria-valuetext={`${duration(at / 1000)} of ${duration(end / 1000)}`}
          onInput={(e) => onPosition(Number((e.currentTarget as HTMLInputElement).value))}
        />
      </label>
      {traces.length > 0 && (
        <label>
          Trace
          <select value={trace} onChange={(e) => onTrace((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">every exchange</option>
            {traces.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
      )}
      <span class="clock">
        {duration(at / 1000)} / {duration(end / 1000)} · {shown} of {total} events
      </span>
    </div>
  );
}

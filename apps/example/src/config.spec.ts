import { describe, expect, it } from 'vitest';
import { parseConfig } from './config.js';

describe('example flags', () => {
  it('--work-style: valid by default, signal from the flag or WORK_STYLE, the flag first', () => {
    expect(parseConfig([], {}).workStyle).toBe('valid');
    expect(parseConfig(['--work-style', 'signal'], {}).workStyle).toBe('signal');
    expect(parseConfig([], { WORK_STYLE: 'signal' }).workStyle).toBe('signal');
    expect(parseConfig(['--work-style', 'valid'], { WORK_STYLE: 'signal' }).workStyle).toBe('valid');
    expect(() => parseConfig(['--work-style', 'abort'], {})).toThrow('--work-style must be valid or signal, got "abort"');
  });
});

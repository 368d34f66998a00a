import { describe, expect, it } from 'vitest';
import { decodeName } from '../main/repository/snapshot/names';
import { visibleName } from './visible-name';

describe('visibleName', () => {
  it('leaves ordinary names, accents and emoji as they are', () => {
    for (const name of ['config.yaml', 'café.txt', 'カメラ 01.json', '📷.jpg', '<b>x</b>&amp;']) expect(visibleName(name)).toBe(name);
  });

  it('writes bytes that are not UTF-8 as \\xHH, so two such names differ on screen', () => {
    const e9 = visibleName(decodeName(Buffer.from('caf\xe9.txt', 'latin1')));
    const e8 = visibleName(decodeName(Buffer.from('caf\xe8.txt', 'latin1')));
    expect(e9).toBe('caf\\xE9.txt');
    expect(e8).toBe('caf\\xE8.txt');
  });

  it('writes control, invisible and direction-changing characters as escapes, and a backslash as \\\\', () => {
    expect(visibleName('evil\u202Etxt.exe')).toBe('evil\\u202Etxt.exe');
    expect(visibleName('new\nline\t\r\x01\x7f.txt')).toBe('new\\nline\\t\\r\\x01\\x7F.txt');
    expect(visibleName('a\u200Bb\uFEFF')).toBe('a\\u200Bb\\uFEFF');
    expect(visibleName('caf\\xE9.txt')).toBe('caf\\\\xE9.txt');
    expect(visibleName('tag\u{E0041}')).toBe('tag\\u{E0041}');
  });
});

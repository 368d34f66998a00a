/**
 * The console's warning, error and success banners are readable in both themes: their text against
 * their tinted background (on a card and on the page) meets WCAG AA for normal text (4.5:1).
 */
import { expect, test } from './fixtures';

test('banners keep 4.5:1 contrast in the light and the dark theme', async ({ host, console: app, page }) => {
  await app.open(host.url);
  const ratios = await page.evaluate(() => {
    /** sRGB channels 0..1 and alpha of a computed color (rgb(), rgba() or color(srgb …)). */
    const parse = (css: string): [number, number, number, number] => {
      const srgb = /color\(srgb ([\d.e-]+) ([\d.e-]+) ([\d.e-]+)(?: \/ ([\d.e-]+))?\)/.exec(css);
      if (srgb) return [Number(srgb[1]), Number(srgb[2]), Number(srgb[3]), srgb[4] === undefined ? 1 : Number(srgb[4])];
      const rgb = /rgba?\(([\d.]+),? ([\d.]+),? ([\d.]+)(?:,? \/? ?([\d.]+))?\)/.exec(css);
      if (rgb) return [Number(rgb[1]) / 255, Number(rgb[2]) / 255, Number(rgb[3]) / 255, rgb[4] === undefined ? 1 : Number(rgb[4])];
      throw new Error(`unparsed color ${css}`);
    };
    const over = (top: [number, number, number, number], under: [number, number, number]): [number, number, number] => [0, 1, 2].map((i) => top[i]! * top[3] + under[i]! * (1 - top[3])) as [number, number, number];
    const luminance = (c: [number, number, number]) => {
      const [r, g, b] = c.map((v) => (v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)) as [number, number, number];
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const out: Record<string, number> = {};
    const main = document.querySelector('main') ?? document.body;
    for (const theme of ['light', 'dark']) {
      document.documentElement.dataset.theme = theme;
      for (const holder of ['card', 'page']) {
        const box = document.createElement('div');
        if (holder === 'card') box.className = 'card';
        main.prepend(box);
        for (const kind of ['banner-warn', 'banner-error', 'banner-ok']) {
          const banner = document.createElement('p');
          banner.className = `banner ${kind}`;
          banner.textContent = 'A message';
          box.append(banner);
          // The background the banner's tint sits on: the nearest opaque one up the tree.
          let under: [number, number, number] | null = null;
          for (let el: Element | null = box; el && !under; el = el.parentElement) {
            const bg = parse(getComputedStyle(el).backgroundColor);
            if (bg[3] === 1) under = [bg[0], bg[1], bg[2]];
          }
          under ??= parse(getComputedStyle(document.body).backgroundColor).slice(0, 3) as [number, number, number];
          const background = over(parse(getComputedStyle(banner).backgroundColor), under);
          const text = over(parse(getComputedStyle(banner).color), background);
          const [a, b] = [luminance(text), luminance(background)];
          out[`${theme} ${kind} on ${holder}`] = Math.round(((Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)) * 100) / 100;
        }
        box.remove();
      }
    }
    return out;
  });
  expect(Object.keys(ratios)).toHaveLength(12);
  expect(Object.entries(ratios).filter(([, ratio]) => ratio < 4.5)).toEqual([]);
});

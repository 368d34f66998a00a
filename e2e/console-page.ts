/** Page object for the console: navigation, readiness, the Settings form. */
import { expect } from '@playwright/test';
import type { Locator, Page } from '@playwright/test';

export const PAGE_IDS = ['fleet', 'catalog', 'restore', 'dashboards', 'alerts', 'audit', 'settings'] as const;
export type PageId = (typeof PAGE_IDS)[number];

/** That `locator`'s text stands on one line (a table cell broke "rvm-031" at its hyphen, "10.5 s" before its unit). */
export async function expectOneLine(locator: Locator): Promise<void> {
  // The lines its text fills: the distinct tops of the text's boxes (a cell's own height follows its row).
  const lines = await locator.evaluate((e) => {
    const range = document.createRange();
    range.selectNodeContents(e);
    return new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top))).size;
  });
  expect(lines, `"${await locator.textContent()}" on one line`).toBe(1);
}

export class ConsolePage {
  readonly page: Page;
  readonly cspViolations: string[] = [];

  constructor(page: Page) {
    this.page = page;
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) this.cspViolations.push(message.text());
    });
  }

  async open(url: string): Promise<void> {
    await this.page.goto(url);
    await expect(this.page.locator('html')).toHaveAttribute('data-ready', 'true');
  }

  async goTo(id: PageId): Promise<Locator> {
    await this.page.getByTestId(`nav-${id}`).click();
    const main = this.page.getByTestId(`page-${id}`);
    await expect(main).toBeVisible();
    await expect(this.page.getByTestId(`nav-${id}`)).toHaveAttribute('aria-current', 'page');
    return main;
  }

  field(name: string): Locator {
    return this.page.getByTestId(`setting-${name}`);
  }

  /** Types into a number setting and leaves it: a number field commits its value on blur. */
  async setNumber(name: string, value: string): Promise<void> {
    await this.field(name).fill(value);
    await this.field(name).press('Tab');
  }

  async save(): Promise<void> {
    await this.page.getByTestId('settings-save').click();
  }

  status(): Locator {
    return this.page.getByTestId('settings-status');
  }
}

/** A counting semaphore. */
export class Slots {
  private used = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async acquire(): Promise<void> {
    while (this.used >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.used++;
  }

  release(): void {
    this.used--;
    this.waiting.shift()?.();
  }
}

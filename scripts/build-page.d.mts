/** Builds the page (scripts/build-page.mjs); writes it to outFile when given. Answers the HTML. */
export function buildPage(outFile?: string): Promise<string>;

/** Builds the page (scripts/build-page.mjs); writes it to outFile when given, with its .br and .gz forms. Answers the HTML. */
export function buildPage(outFile?: string): Promise<string>;

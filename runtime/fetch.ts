// A page's access to the text files of an artifact served over HTTP (its tokenizer.json,
// tokenizer_config.json, chat template), named in errors by URL. No Node-only imports.

import { ArtifactError, reason } from "./errors.js";

/** The text of `file` under the artifact's base URL; a failed request is WF502 naming the URL. */
export async function fetchArtifactText(base: string, file: string): Promise<string> {
  const url = `${base.replace(/\/+$/, "")}/${file}`;
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new ArtifactError("WF502", `${url}: cannot be fetched (${reason(e)})`);
  }
  if (!res.ok) throw new ArtifactError("WF502", `${url}: HTTP ${res.status}`);
  return res.text();
}

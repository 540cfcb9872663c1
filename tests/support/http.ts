/**
 * A JSON call to a running instance: the body is sent as JSON when given, and the answer's
 * status and parsed body come back (undefined for an empty body, as a 204's).
 */
export async function callJson(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      ...headers,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  // biome-ignore lint/suspicious/noExplicitAny: the tests assert the shape of what comes back.
  const parsed: any = text ? JSON.parse(text) : undefined;
  return { status: response.status, body: parsed };
}

/** Defines a journey through the API, as a user would; it must be new. */
export async function putJourney(
  address: string,
  { id, ...body }: { id: string } & Record<string, unknown>,
) {
  const { status, body: answer } = await callJson(address, 'PUT', `/v1/journeys/${id}`, body);
  if (status !== 201) {
    throw new Error(`PUT /v1/journeys/${id} answered ${status}: ${JSON.stringify(answer)}`);
  }
}

import { describe, expect, it } from "vitest";
import { errorMessage, fieldErrors, messagesAbout } from "./client";

describe("the API's errors", () => {
  it("gives each field its messages, nested ones included", () => {
    const error = {
      detail: "Enter a path starting with /.",
      errors: { name: ["This field is required."], "paths.0.value": ["Enter a path starting with /."], "paths.1.value": ["Too long."] },
    };
    expect(fieldErrors(error)).toEqual({ name: "This field is required.", paths: "Enter a path starting with /. Too long." });
    expect(messagesAbout(error, "paths")).toEqual(["Enter a path starting with /.", "Too long."]);
    expect(messagesAbout(error, "path")).toEqual([]);
    expect(errorMessage(error)).toBe("Enter a path starting with /.");
  });

  it("has a message even when the answer had no body", () => {
    expect(fieldErrors(undefined)).toEqual({});
    expect(errorMessage(undefined)).toBe("Something went wrong.");
  });
});

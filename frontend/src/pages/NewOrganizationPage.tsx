import { Alert, Button, Paper, Stack, TextInput, Title } from "@mantine/core";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useNavigate } from "react-router-dom";
import { api, errorMessage, fieldErrors } from "../api/client";

export function NewOrganizationPage() {
  const queries = useQueryClient();
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    const { data, error: failed } = await api.POST("/api/v1/orgs/", { body: { name } });
    if (failed) {
      setErrors(fieldErrors(failed));
      setError(errorMessage(failed));
      return;
    }
    await queries.invalidateQueries({ queryKey: ["me"] });
    navigate(`/orgs/${(data as { slug: string }).slug}/clusters`);
  };
  return (
    <Paper withBorder p="lg" maw={480} component="form" onSubmit={submit}>
      <Stack>
        <Title order={3}>New organization</Title>
        {error && <Alert color="red">{error}</Alert>}
        <TextInput label="Name" required value={name} error={errors.name} onChange={(e) => setName(e.currentTarget.value)} />
        <Button type="submit">Create</Button>
      </Stack>
    </Paper>
  );
}

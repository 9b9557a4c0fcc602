export const get = () => undefined;
export const getAll = () => [];
